"""search.results.compare: two real searches in one store are overlaid, logged as a role=compare run, and
their table rows agree with what each search recorded itself."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from mlflow_config import tracking
from search.results import compare
from tests.conftest import run_small_search

BUDGET, SIZE_BUDGET = 4, 0.5


@pytest.fixture(scope="module")
def two_searches(tmp_path_factory, ray_session):
    """Their own store, so that digits_search's experiment keeps exactly one search. The second
    search differs in sampler AND methods: with budget 4 both samplers would start alike."""
    home = tmp_path_factory.mktemp("compare-home")
    first = run_small_search(home, "cmp-tpe", BUDGET)
    second = run_small_search(home, "cmp-random", BUDGET, "--sampler", "random", "--methods", "fpgm,hybrid")
    assert first.exit_code == second.exit_code == 0
    return first, second


def table_rows(out: str) -> dict[str, dict[str, str]]:
    lines = out.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.split()[:1] == ["search"])
    assert lines[header].split() == list(compare.COLUMNS)
    rows = {}
    for ln in lines[header + 1:]:
        if not ln.strip():
            break
        rows[ln.split()[0]] = dict(zip(compare.COLUMNS, ln.split()))
    return rows


def best_within_budget(client: MlflowClient, search) -> tuple[float, str]:
    runs = [r for r in tracking.child_runs(client, search.experiment_id, search.parent_run_id)
            if r.data.metrics["size_ratio"] <= SIZE_BUDGET]
    best = max(runs, key=lambda r: r.data.metrics["val_acc"])
    return best.data.metrics["val_acc"], best.info.run_id


@pytest.mark.slow
def test_compare_overlays_both_fronts_and_logs_a_compare_run(two_searches, capsys):
    first, second = two_searches
    # One by name, one by parent run id: both ways of naming a search.
    code = compare.main([first.name, second.parent_run_id, "--size-budget", str(SIZE_BUDGET),
                         "--home", str(first.home), "--tracking-uri", first.tracking_uri])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = table_rows(out)
    assert set(rows) == {first.name, second.name}

    client = MlflowClient(first.tracking_uri)
    for search in (first, second):
        row, parent = rows[search.name], client.get_run(search.parent_run_id).data.metrics
        assert row["parent_run_id"] == search.parent_run_id
        assert int(row["trials"]) == BUDGET
        assert int(row["front_points"]) == parent["front_size"]
        assert float(row["hypervolume"]) == pytest.approx(parent["hypervolume"], rel=1e-3)  # printed %.4g
        acc, run_id = best_within_budget(client, search)
        assert row["best_run_id"] == run_id and float(row["best_val_acc"]) == pytest.approx(acc, abs=1e-4)
        assert float(row["best_test_acc"]) == pytest.approx(client.get_run(run_id).data.metrics["test_acc"], abs=1e-4)
        assert float(row["hv_at_n"]) == pytest.approx(parent["hypervolume"], rel=1e-3)  # equal budgets: all trials
    assert "one validation image is 0.56 points of val_acc (180 images)" in out  # digits: 180 validation images
    assert "budgets differ" not in out

    runs = client.search_runs([first.experiment_id], "tags.role = 'compare'")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags["searches"] == f"{first.name},{second.name}"
    assert run.info.run_id in out
    assert f"#/experiments/{first.experiment_id}/runs/{run.info.run_id}?workflowType=machine_learning" in out
    for search in (first, second):
        logged = client.get_run(search.parent_run_id).data.metrics["hypervolume"]
        assert run.data.metrics[f"hypervolume.{search.name}"] == pytest.approx(logged, rel=1e-12)
    names = {a.path: a.file_size for a in client.list_artifacts(run.info.run_id)}
    assert {"compare.png", "compare.html", "compare.csv", "compare.json", "compare_hypervolume.png"} <= set(names)
    assert names["compare.png"] > 10_000  # a real plot
    with tempfile.TemporaryDirectory() as tmp:  # the overlay page: every trial of both searches, no script
        page = Path(client.download_artifacts(run.info.run_id, "compare.html", tmp)).read_text()
    assert page.count("<circle") == 2 * BUDGET and "<script" not in page and names["compare.html"] < 100_000


@pytest.mark.slow
def test_unknown_search_is_one_line_listing_the_known_ones(two_searches, capsys):
    first, _ = two_searches
    code = compare.main([first.name, "no-such-search", "--home", str(first.home), "--tracking-uri", first.tracking_uri])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: search 'no-such-search' not found") and "cmp-random, cmp-tpe" in err[0]


@pytest.mark.parametrize("argv,expected", [
    ([], "required: SEARCH"),
    (["a", "--size-budget", "0"], "--size-budget: 0.0 is not accepted"),
    (["a", "--size-budget", "lots"], "--size-budget: invalid float value: 'lots'"),
    (["a", "--objective", "speed"], "--objective: invalid choice: 'speed'"),
    (["a"], "no MLflow store at sqlite:///"),
    (["n" * 300], "SEARCH: 'nnnnnnnn"),  # checked before the store is even opened
    (["a\nb"], "SEARCH: 'a\\nb' is not accepted; expected a search name"),
])
def test_bad_command_line_is_one_line_exit_2(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code = compare.main([*argv, "--home", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err


def test_a_compare_run_that_fails_to_log_ends_failed_with_the_reason(tmp_path, monkeypatch):
    """Never left RUNNING: whatever breaks while logging, the run says FAILED and why."""
    from types import SimpleNamespace

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("e", artifact_location=(tmp_path / "art").as_uri())
    parent = SimpleNamespace(info=SimpleNamespace(experiment_id=exp, run_id="p" * 32))
    row = {"hypervolume": 0.5, "front_points": 1, "best_val_acc": "-"}

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(compare, "_log_comparison", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        compare.log_compare_run(client, [compare.Compared("s", parent, [], row)], "size_bytes", 0.5)
    runs = client.search_runs([exp], "tags.role = 'compare'")
    assert len(runs) == 1 and runs[0].info.status == "FAILED"
    assert runs[0].data.tags["failure_reason"] == "RuntimeError: disk full"


def test_other_budgets_are_compared_at_equal_trial_counts_and_said():
    from types import SimpleNamespace

    from search.results.pareto import Point, hypervolume

    def search(name, budget, accs):
        points = [Point(f"{name}{i}", a, 0.5 - 0.04 * i, name) for i, a in enumerate(accs)]
        parent = SimpleNamespace(data=SimpleNamespace(params={"budget": str(budget), "val_images": "180"}))
        return compare.Compared(name, parent, points, {"hv_at_n": "-"})

    long, short = search("long", 50, [0.8, 0.85, 0.9, 0.95]), search("short", 12, [0.9, 0.7])
    assert compare.equal_trials([long, short]) == 2
    assert long.row["hv_at_n"] == pytest.approx(hypervolume(long.points[:2]))
    assert long.row["hv_at_n"] < hypervolume(long.points)  # its later trials do not count
    notes = compare.caveats([long, short])
    assert notes[0].startswith("budgets differ (long: 50, short: 12)")
    assert any("one validation image is 0.56 points" in n for n in notes)
