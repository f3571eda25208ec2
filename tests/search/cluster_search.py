"""Runs a small search on a simulated 2-node Ray cluster (ray.cluster_utils.Cluster).
Used by test_cluster.py in a subprocess, so the simulated cluster never meets the test
session's own Ray instance. Usage: python -m tests.search.cluster_search HOME NAME BUDGET"""
from __future__ import annotations

import sys

from ray.cluster_utils import Cluster

from search.run import main
from tests.conftest import SMALL_SEARCH_ARGS


def run(home: str, name: str, budget: int) -> int:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        return main(["--budget", str(budget), *SMALL_SEARCH_ARGS, "--methods", "magnitude,fpgm",
                     "--finetune-epochs", "30", "--max-concurrent", "2", "--home", home, "--name", name,
                     "--address", cluster.address])
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    sys.exit(run(sys.argv[1], sys.argv[2], int(sys.argv[3])))
