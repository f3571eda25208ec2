"""A search on a simulated multi-node Ray cluster: trials land on more than one node and all
are recorded in MLflow."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def test_trials_spread_over_two_nodes_and_all_are_recorded(tmp_path):
    ray_tmp = tmp_path / "raytmp"
    (ray_tmp / "ray").mkdir(parents=True)
    # cluster_utils writes <RAY_TMPDIR>/ray/ray_current_cluster: keep it out of /tmp/ray, where a
    # later plain ray.init() would find it.
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp)}
    home, budget = tmp_path / "home", 6
    proc = subprocess.run([sys.executable, "-m", "tests.search.cluster_search", str(home), "cluster", str(budget)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exps = [e.experiment_id for e in client.search_experiments()]
    runs = [r for r in client.search_runs(exps, filter_string="tags.search = 'cluster'")
            if r.data.tags.get("role") != "search"]  # children carry no role tag
    assert len(runs) == budget and all(r.info.status == "FINISHED" for r in runs)
    nodes = {r.data.tags["ray_node_id"] for r in runs}
    assert len(nodes) >= 2, nodes
