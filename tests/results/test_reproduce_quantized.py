"""Issue 13 end to end: a search whose trials are int8 (any method), filter-level Taylor,
fully retrained lottery tickets and QAT hybrid, through Ray Tune + Optuna + MLflow; every trial
is rebuilt from MLflow alone and gives back exactly the accuracies it logged, at the logged size."""
from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from mlflow_config import artifacts, tracking
from search.results import cli_kit as cli
from search.results import evaluate, reproduce
from tests.conftest import run_small_search
from trainables.models import build_model

pytestmark = pytest.mark.slow
FLAGS = ("--methods", "taylor,lottery,hybrid", "--quantize", "int8", "--taylor-granularity", "filter",
         "--hybrid-quant", "qat", "--lottery-rounds", "1,2", "--lottery-rewind", "0.05", "--enqueue-recipe", "false")


@pytest.fixture(scope="module")
def search(tmp_path_factory, ray_session):
    return run_small_search(tmp_path_factory.mktemp("q-home"), "digits-int8", 6, *FLAGS)


def test_every_trial_is_int8_named_in_mlflow_and_reproduces_exactly(search, capsys):
    assert search.exit_code == 0
    client = MlflowClient(search.tracking_uri)
    runs = tracking.child_runs(client, search.experiment_id, search.parent_run_id)
    assert len(runs) == search.budget and {r.data.params["method"] for r in runs} == {"taylor", "lottery", "hybrid"}
    store, uri = cli.open_store(search.tracking_uri, search.home)
    for run in runs:
        params, method = run.data.params, run.data.params["method"]
        assert params["quantize"] == "int8"
        if method == "lottery":  # the retraining is named, so full and cheap runs never mix up
            assert params["lottery_retrain"] == "full" and params["lottery_control"] == "none"
            assert float(params["lottery_rewind"]) == 0.05
        trial = reproduce.load_trial(store, run.info.run_id, uri, home=search.home)
        if method == "taylor":  # whole filters removed, physically; the classifier keeps its outputs
            assert params["taylor_granularity"] == "filter"
            dense = sum(p.numel() for p in build_model("simplecnn", 1, 10, 8).parameters())
            assert sum(p.numel() for p in trial.model.parameters()) == run.data.metrics["params"] < dense
            assert trial.model.fc2.out_features == 10
        assert trial.encoded_bytes == run.data.metrics["size_bytes"]
        stored = artifacts.load_tensors(client, run.info.run_id, f"{artifacts.WEIGHTS_DIR}/{artifacts.WEIGHTS_FILE}")
        assert any(k.endswith("::scale") for k in stored), method  # stored as int8 values + scales
        code = evaluate.main(["--run-id", run.info.run_id, "--home", str(search.home),
                              "--tracking-uri", search.tracking_uri])
        out = capsys.readouterr().out
        assert code == 0, (method, out)
        for key in ("val_acc", "test_acc"):
            logged = run.data.metrics[key]
            assert f"{key}: logged {logged!r} reproduced {logged!r} exact" in out, (method, out)
