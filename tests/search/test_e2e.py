"""End to end: a real digits search through Ray Tune + Optuna + MLflow, checked against the
MLflow contract other tools rely on (see README "What MLflow holds")."""
from __future__ import annotations

import re

import pytest
import torch
from mlflow.tracking import MlflowClient

from mlflow_config import artifacts, tracking
from tests.conftest import SMALL_SEARCH_ARGS, run_small_search

pytestmark = pytest.mark.slow
LAYERS = ("conv1", "conv2", "fc1", "fc2")
METRICS = ("val_acc", "test_acc", "size_bytes", "nonzero_params", "flops", "params", "latency_ms", "cost_s")


def children(search):
    client = MlflowClient(search.tracking_uri)
    return client, tracking.child_runs(client, search.experiment_id, search.parent_run_id)


def test_search_leaves_one_parent_and_one_finished_child_per_trial(digits_search):
    assert digits_search.exit_code == 0
    client, runs = children(digits_search)
    assert len(runs) == digits_search.budget
    assert all(r.info.status == "FINISHED" for r in runs)
    parents = client.search_runs([digits_search.experiment_id], filter_string="tags.role = 'search'")
    assert [p.info.run_id for p in parents] == [digits_search.parent_run_id]


def test_child_runs_meet_the_contract(digits_search):
    client, runs = children(digits_search)
    for r in runs:
        method = r.data.params["method"]
        assert r.data.tags["method"] == method
        assert r.data.tags["pareto"] in ("true", "false")
        for m in METRICS:
            assert m in r.data.metrics, (method, m)
        ratios = {k: float(v) for k, v in r.data.params.items() if k.startswith("sparsity.")}
        assert set(ratios) == {f"sparsity.{n}" for n in LAYERS}  # one param per layer, every method
        assert all(0.0 <= v < 1.0 for v in ratios.values())
        if method == "fpgm":
            assert ratios["sparsity.fc2"] == 0.0  # the classifier keeps its outputs
    assert any(r.data.tags["pareto"] == "true" for r in runs)


def test_every_masks_artifact_loads_and_its_zeros_match_nonzero_params(digits_search):
    client, runs = children(digits_search)
    for r in runs:
        masks = artifacts.load_tensors(client, r.info.run_id, f"{artifacts.MASKS_DIR}/{artifacts.MASKS_FILE}")
        assert all(m.dtype == torch.bool for m in masks.values())
        pruned = sum(int((~m).sum()) for m in masks.values())
        m = r.data.metrics
        assert m["params"] - m["nonzero_params"] == pruned, r.data.params["method"]


def test_every_method_ran_and_the_parent_holds_the_front_and_baseline(digits_search):
    client, runs = children(digits_search)
    assert {r.data.params["method"] for r in runs} == {"magnitude", "taylor", "fpgm", "lottery", "hybrid"}
    parent = client.get_run(digits_search.parent_run_id)
    assert parent.info.status == "FINISHED"
    for k in ("baseline_val_acc", "baseline_test_acc", "baseline_size_bytes", "hypervolume", "front_size"):
        assert k in parent.data.metrics
    names = {a.path for a in client.list_artifacts(digits_search.parent_run_id)}
    assert {"pareto.csv", "pareto.png", "pareto.html", "pareto.json", "hypervolume.png"} <= names
    rows = artifacts.load_json(client, digits_search.parent_run_id, "pareto.json")
    tagged = {r.info.run_id for r in runs if r.data.tags["pareto"] == "true"}
    assert {row["run_id"] for row in rows} == tagged


def test_structural_methods_are_smaller_and_hybrid_is_int8_sized(digits_search):
    client, runs = children(digits_search)
    parent = client.get_run(digits_search.parent_run_id).data.metrics
    for r in runs:
        m, method = r.data.metrics, r.data.params["method"]
        if method == "fpgm":
            assert m["params"] < parent["baseline_params"] and m["flops"] < parent["baseline_flops"]
        if method == "hybrid":
            assert m["size_bytes"] < 0.3 * parent["baseline_size_bytes"]


def test_second_search_reuses_the_cached_baseline(digits_search, capsys):
    again = run_small_search(digits_search.home, "digits-e2e-again", 2)
    out = capsys.readouterr().out
    assert again.exit_code == 0
    assert "reusing cached dense model" in out and "training dense" not in out
    # The closing lines say where to look, and a captured (non-terminal) output is plain lines.
    assert f"/#/experiments/{again.experiment_id}/runs?workflowType=machine_learning" in out
    assert f"prune-search dashboard --home {again.home}" in out
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", out)  # no \r rewrites, no ANSI colours


def test_points_given_to_run_search_are_enqueued_first_in_order(digits_search):
    """The Python API's `points` replace the default seeding: trial 0 and 1 are exactly them."""
    from search.config import load_config
    from search.run import run_search

    cfg = load_config(["--budget", "2", "--max-concurrent", "1", *SMALL_SEARCH_ARGS,
                       "--home", str(digits_search.home), "--name", "digits-points"])
    points = [{"method": "lottery"}, {"method": "fpgm", "finetune_lr": 0.0123}]
    assert run_search(cfg, points=points) == 0
    client = MlflowClient(digits_search.tracking_uri)
    parent = client.search_runs([digits_search.experiment_id],
                                filter_string="tags.search = 'digits-points' and tags.role = 'search'")[0]
    children = tracking.child_runs(client, digits_search.experiment_id, parent.info.run_id)
    by_trial = {int(r.data.params["optuna_trial"]): r for r in children}
    assert sorted(by_trial) == [0, 1]
    assert by_trial[0].data.params["method"] == "lottery"
    assert by_trial[1].data.params["method"] == "fpgm" and float(by_trial[1].data.params["finetune_lr"]) == 0.0123


def test_what_the_uis_read_is_recorded(digits_search):
    """The experiment is marked model development; the front is an MLflow table and a small
    script-free page with every trial; the Optuna study names its objectives."""
    import json
    import tempfile
    from pathlib import Path

    import optuna

    client, runs = children(digits_search)
    assert client.get_experiment(digits_search.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    parent = client.get_run(digits_search.parent_run_id)
    logged = json.loads(parent.data.tags["mlflow.loggedArtifacts"])
    assert {"path": "pareto_table.json", "type": "table"} in logged
    with tempfile.TemporaryDirectory() as tmp:
        table = json.loads(Path(client.download_artifacts(parent.info.run_id, "pareto_table.json", tmp)).read_text())
        page = Path(client.download_artifacts(parent.info.run_id, "pareto.html", tmp)).read_text()
    rows = [dict(zip(table["columns"], row)) for row in table["data"]]
    assert {r["run_id"] for r in rows} == {r.info.run_id for r in runs if r.data.tags["pareto"] == "true"}
    assert {"run_name", "method", "val_acc", "size_bytes"} <= set(table["columns"])
    assert page.count("<circle") == len(runs) and "<script" not in page and len(page) < 100_000
    study = optuna.load_study(study_name=digits_search.name, storage=f"sqlite:///{digits_search.home / 'optuna.db'}")
    assert study.metric_names == ["val_acc", "size_bytes"]


def test_screening_enqueues_only_its_chosen_candidates_and_reports_the_rank_correlation(digits_search, capsys):
    """--screen 12 --screen-keep 4: the first four trials are exactly the four enqueued
    candidates of screen.json, no other screened candidate is fine-tuned, and the search's run
    gets the Spearman correlation of screened vs fine-tuned val accuracy."""
    import optuna

    from mlflow_config.artifacts import SCREEN_FILE, load_json

    run = run_small_search(digits_search.home, "digits-screen", 8, "--methods", "magnitude,fpgm",
                           "--enqueue-recipe", "false", "--screen", "12", "--screen-keep", "4",
                           "--max-concurrent", "1")
    assert run.exit_code == 0
    client = MlflowClient(run.tracking_uri)
    records = load_json(client, run.parent_run_id, SCREEN_FILE)["candidates"]
    assert len(records) == 12 and sum(r["enqueued"] for r in records) == 4
    study = optuna.load_study(study_name=run.name, storage=f"sqlite:///{run.home / 'optuna.db'}")
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    params = [dict(t.params) for t in trials]
    enqueued = [r["params"] for r in records if r["enqueued"]]
    # one seeding trial per method first (budget 8 >= 2 x 2 methods), then the screened four
    assert params[2:6] == enqueued
    others = [r["params"] for r in records if not r["enqueued"]]
    assert not [p for p in params if p in others]  # never fine-tunes more than asked
    metrics = client.get_run(run.parent_run_id).data.metrics
    assert metrics["screen_enqueued"] == 4 and metrics["screen_pairs"] == 4
    assert -1.0 <= metrics["screen_spearman"] <= 1.0
    assert "rank correlation (Spearman)" in capsys.readouterr().out
