"""The private Ray, Optuna and MLflow APIs the product relies on (search/private_apis.py and
mlflow_config.tracking.fluent_tracking_uri): each still there and behaving as assumed. An
upgrade that moves one fails here, by name, before any search does."""
from __future__ import annotations

import ast
import os
from pathlib import Path

import optuna
import pytest

from search import private_apis

ROOT = Path(__file__).resolve().parents[1]
PRIVATE_MARKERS = ("ray._private", "ray._raylet", "._storage", "._trial_id", "._ot_", "._completed_trials",
                   "_use_tracking_uri")
ALLOWED = {"search/private_apis.py", "mlflow_config/tracking.py"}


def test_no_private_api_outside_its_one_place():
    offenders = {}
    for package in ("search", "trainables", "pruners", "mlflow_config"):
        for path in (ROOT / package).rglob("*.py"):
            rel = str(path.relative_to(ROOT))
            code = ast.unparse(ast.parse(path.read_text()))  # comments and docstrings do not count
            hits = [m for m in PRIVATE_MARKERS if m in code and rel not in ALLOWED]
            if hits:
                offenders[rel] = hits
    assert not offenders


def test_local_ray_cpus_is_a_positive_count():
    assert private_apis.local_ray_cpus() >= 1


def test_auto_address_names_the_local_cluster_or_raises_what_cluster_catches():
    """Either answer of Ray's private lookup: the test session's own local Ray (HOST:PORT) when one
    runs, else ConnectionError / ValueError, the errors search.cluster turns into one line."""
    import re

    try:
        found = private_apis.auto_address()
    except (ConnectionError, ValueError):
        return
    assert re.fullmatch(r"\[?[0-9A-Za-z.:-]+\]?:[0-9]+", found), found


def test_gcs_probe_of_a_closed_port_raises_within_its_timeout():
    with pytest.raises(Exception):  # noqa: B017 - any error means "not a Ray head"; the call must return
        private_apis.gcs_answers("127.0.0.1:1", timeout_s=2)


def test_ray_cluster_flag_is_switched_off_and_restored():
    from ray._private import ray_constants

    before = ray_constants.ENABLE_RAY_CLUSTER
    with private_apis.ray_cluster_mode_off():
        assert ray_constants.ENABLE_RAY_CLUSTER is False
    assert ray_constants.ENABLE_RAY_CLUSTER == before


def test_optuna_search_internals_link_ray_trials_to_optuna_trials():
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch({"x": tune.uniform(0, 1)}, metric=["a", "b"], mode=["max", "min"], seed=0)
    config = searcher.suggest("ray-1")
    trial = private_apis.searcher_trial(searcher, "ray-1")
    assert isinstance(trial, optuna.Trial) and trial.params["x"] == config["x"]
    assert isinstance(private_apis.searcher_study(searcher), optuna.Study)
    assert private_apis.searcher_trial(searcher, "never-suggested") is None
    searcher.on_trial_complete("ray-1", {"a": 1.0, "b": 2.0})
    assert "ray-1" in private_apis.searcher_completed(searcher)


def test_user_attr_on_a_trial_of_a_reopened_study():
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.ask()
    frozen = study.get_trials(deepcopy=False)[0]
    private_apis.set_frozen_trial_user_attr(study, frozen, "failure_reason", "interrupted")
    assert study.get_trials()[0].user_attrs == {"failure_reason": "interrupted"}


def test_fluent_tracking_uri_is_set_for_the_block_and_put_back(tmp_path, monkeypatch):
    import mlflow

    from mlflow_config import tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    with tracking.fluent_tracking_uri(uri):
        assert mlflow.get_tracking_uri() == uri
    assert mlflow.get_tracking_uri() == before
    assert "MLFLOW_TRACKING_URI" not in os.environ
