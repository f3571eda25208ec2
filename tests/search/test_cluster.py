"""A search on a simulated multi-node Ray cluster: trials land on more than one node and all
are recorded in MLflow."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_trials_spread_over_two_nodes_and_all_are_recorded(tmp_path):
    # A short path: Ray's unix sockets live under it and AF_UNIX paths stop at 107 bytes.
    ray_tmp = Path(tempfile.mkdtemp(prefix="rc-", dir="/tmp"))
    (ray_tmp / "ray").mkdir()
    # cluster_utils writes <RAY_TMPDIR>/ray/ray_current_cluster: keep it out of /tmp/ray, where a
    # later plain ray.init() would find it.
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp)}
    home, budget = tmp_path / "home", 6
    try:
        proc = subprocess.run([sys.executable, "-m", "tests.search.cluster_search", str(home), "cluster", str(budget)],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exps = [e.experiment_id for e in client.search_experiments()]
    runs = [r for r in client.search_runs(exps, filter_string="tags.search = 'cluster'")
            if r.data.tags.get("role") != "search"]  # children carry no role tag
    assert len(runs) == budget and all(r.info.status == "FINISHED" for r in runs)
    nodes = {r.data.tags["ray_node_id"] for r in runs}
    assert len(nodes) >= 2, nodes
