"""Shared fixtures. Ray costs 3-4 s to start, so one local cluster serves the whole session,
and one small digits search is run once and shared by every test that reads its MLflow runs."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

# A tiny but real recipe: digits, short training, every method.
SMALL_SEARCH_ARGS = ("--dataset", "digits", "--baseline-epochs", "10", "--finetune-epochs", "1")


@dataclass(frozen=True)
class FinishedSearch:
    home: Path
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    name: str
    budget: int
    exit_code: int


@pytest.fixture(scope="session")
def ray_session():
    import ray

    from search.cluster import start_local_ray

    os.environ.setdefault("RAY_ACCEPT_CALLBACK_OUTPUTS", "1")
    started = not ray.is_initialized()
    if started:
        start_local_ray(num_cpus=2)  # as a search starts it: every server on 127.0.0.1
    yield
    if started:
        ray.shutdown()


def run_small_search(home: Path, name: str, budget: int, *extra: str) -> FinishedSearch:
    from mlflow.tracking import MlflowClient

    from search.run import main

    code = main(["--budget", str(budget), *SMALL_SEARCH_ARGS, "--home", str(home), "--name", name, *extra])
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(uri)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        filter_string=f"tags.search = '{name}' and tags.role = 'search'")
    assert len(runs) == 1, f"expected one parent run for {name}, found {len(runs)}"
    parent = runs[0]
    return FinishedSearch(home, uri, parent.info.experiment_id, parent.info.run_id, name, budget, code)


@pytest.fixture(scope="session")
def digits_search(tmp_path_factory, ray_session) -> FinishedSearch:
    """One 10-trial digits search over all five methods, shared by the slow tests."""
    home = tmp_path_factory.mktemp("search-home")
    return run_small_search(home, "digits-e2e", 10)
