"""search.cluster: the local Ray listens on 127.0.0.1 only; a trial no node can hold is reported
before the search's MLflow run exists, and stops a running search instead of a silent wait."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from search import cluster

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

# Started in a subprocess: the test session's own Ray is already up. Prints each listening
# address of the Ray processes this Ray started (the driver and its children).
LISTENERS = """
import psutil, ray
from search.cluster import start_local_ray
start_local_ray(num_cpus=1)
me = psutil.Process()
for p in [me, *me.children(recursive=True)]:
    try:
        for c in p.net_connections(kind="inet"):
            if c.status == psutil.CONN_LISTEN:
                print("LISTEN", p.name(), c.laddr.ip)
    except psutil.Error:
        pass
ray.shutdown()
"""


def test_local_ray_listens_on_loopback_only():
    proc = subprocess.run([sys.executable, "-c", LISTENERS], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    listening = [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("LISTEN")]
    assert listening, proc.stdout
    # IPv4 loopback, possibly written IPv4-mapped by an IPv6 socket.
    assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1", "::1") for _, ip in listening), listening


def test_the_session_ray_answers_the_address_probe(ray_session):
    import ray

    cluster.check_address(ray._private.worker._global_node.gcs_address)  # raises if it would not


def test_a_trial_bigger_than_every_node_is_refused(ray_session):
    cpus, _ = cluster.largest_node()
    with pytest.raises(cluster.ClusterError, match=r"--cpus-per-trial: .* no node of the Ray cluster"):
        cluster.check_feasible(cpus + 1, 0)
    with pytest.raises(cluster.ClusterError, match=r"--gpus-per-trial: 1 is not accepted; no node"):
        cluster.check_feasible(1, 1)
    cluster.check_feasible(1, 0)  # fits: no error


@dataclass
class FakeTrial:
    status: str


def test_pending_trials_no_node_can_hold_stop_the_search(ray_session):
    cpus, _ = cluster.largest_node()
    stop = cluster.stop_when_infeasible(cpus + 1, 0, grace_s=0)
    with pytest.raises(cluster.ClusterError, match="the search stopped: --cpus-per-trial"):
        stop.on_step_begin(0, [FakeTrial("PENDING")])
    # A running trial means progress: no error, whatever is pending.
    cluster.stop_when_infeasible(cpus + 1, 0, grace_s=0).on_step_begin(0, [FakeTrial("RUNNING"), FakeTrial("PENDING")])
