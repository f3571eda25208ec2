"""Faults: failing trials are recorded and the search goes on; a SIGKILLed driver resumes to
its budget with nothing lost or counted twice; a killed worker's trial is retried."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psutil
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import SMALL_SEARCH_ARGS, run_small_search

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
# Slow enough trials (about 3-6 s each) that a kill lands mid-search.
SLOW_TRIALS = ("--methods", "magnitude,taylor", "--finetune-epochs", "12", "--max-concurrent", "1")


def study_counts(home: Path, name: str) -> dict[str, int]:
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{home / 'optuna.db'}")
    counts: dict[str, int] = {}
    for t in study.trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def child_runs(home: Path, name: str):
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    exps = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(exps, filter_string=f"tags.search = '{name}'")
    return [r for r in runs if r.data.tags.get("role") != "search"]  # children carry no role tag


def start_search(home: Path, name: str, budget: int, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "search.run", "--budget", str(budget), *SMALL_SEARCH_ARGS, "--home", str(home),
            "--name", name, *extra]
    # Own process group, so the kill takes the driver and the Ray processes it started, like a crash.
    # Output goes to a file: an unread pipe fills up and blocks the driver.
    log = open(home / f"{name}.log", "w")  # noqa: SIM115 - closed when the process ends
    return subprocess.Popen(args, cwd=REPO, start_new_session=True, stdout=log, stderr=subprocess.STDOUT, text=True)


def wait_until(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def finished_children(home: Path, name: str) -> int:
    # Poll only once the driver has saved its search record: the MLflow DB is then fully created.
    # Opening a half-created SQLite DB from here would race the driver's own schema migration.
    if not (home / "searches" / f"{name}.json").exists():
        return 0
    try:
        return sum(r.info.status == "FINISHED" for r in child_runs(home, name))
    except Exception:  # noqa: BLE001 - the database may be mid-creation
        return 0


def test_failing_trials_are_recorded_with_their_reason_and_the_search_goes_on(ray_session, tmp_path, capsys):
    result = run_small_search(tmp_path, "diverge", 2, "--methods", "magnitude", "--finetune-lr", "1e6")
    assert result.exit_code == 1  # nothing worked: not a success
    out = capsys.readouterr().out
    assert "search diverge: all 2 trials failed; the most common reason (2 of 2): DivergedError: loss became" in out
    assert study_counts(tmp_path, "diverge") == {"FAIL": 2}
    study = optuna.load_study(study_name="diverge", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert all("loss became" in t.user_attrs["failure_reason"] for t in study.trials)
    runs = child_runs(tmp_path, "diverge")
    assert len(runs) == 2 and all(r.info.status == "FAILED" for r in runs)
    assert all("DivergedError" in r.data.tags["failure_reason"] for r in runs)
    parent = MlflowClient(result.tracking_uri).get_run(result.parent_run_id)
    assert parent.info.status == "FAILED" and parent.data.metrics["trials_failed"] == 2
    assert parent.data.tags["failure_reason"].startswith("every trial failed: DivergedError")


def test_sigkilled_driver_resumes_to_budget_without_loss_or_duplicates(tmp_path):
    budget, name = 6, "killed"
    proc = start_search(tmp_path, name, budget, *SLOW_TRIALS)
    try:
        wait_until(lambda: finished_children(tmp_path, name) >= 2, 240, "two finished trials")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = study_counts(tmp_path, name)
    assert before.get("COMPLETE", 0) + before.get("FAIL", 0) < budget

    resumed = subprocess.run([sys.executable, "-m", "search.run", "--home", str(tmp_path), "--resume", name],
                             cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    after = study_counts(tmp_path, name)
    assert after.get("COMPLETE", 0) + after.get("FAIL", 0) == budget
    assert after.get("RUNNING", 0) == 0
    # The resumed sampler continues the study instead of replaying its first draws.
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    configs = [tuple(sorted(t.params.items())) for t in complete]
    assert len(configs) == len(set(configs)), [t.params for t in complete]
    finished = [r for r in child_runs(tmp_path, name) if r.info.status == "FINISHED"]
    trial_numbers = [r.data.params["optuna_trial"] for r in finished]
    assert len(trial_numbers) == len(set(trial_numbers)) == after.get("COMPLETE", 0)  # one run per completed trial
    assert all(r.info.status != "RUNNING" for r in child_runs(tmp_path, name))
    # Progress goes on from the trials finished before the kill: the last line is [budget/budget]
    # and its front counts them too (the same front the final report tags).
    progress = [line for line in resumed.stdout.splitlines() if line.startswith("[")]
    on_front = sum(r.data.tags.get("pareto") == "true" for r in finished)
    last_ok = [line for line in progress if "front:" in line][-1]  # a failed trial's line has none
    assert progress[-1].startswith(f"[{budget}/{budget}]") and f"front: {on_front} point" in last_ok, progress


def test_an_error_after_the_parent_run_started_ends_it_failed_with_the_reason(ray_session, tmp_path, monkeypatch,
                                                                             capsys):
    """E.g. every node that could hold a trial left mid-search: exit 2, one line, parent FAILED."""
    import search.run as run_module
    from search.cluster import ClusterError

    def no_node_left(*args, **kwargs):
        raise ClusterError("the search stopped: --gpus-per-trial: 1 is not accepted; no node of the Ray cluster "
                           "has that many GPUs (largest: 0)")

    monkeypatch.setattr(run_module, "_tune", no_node_left)
    result = run_small_search(tmp_path, "node-left", 2, "--methods", "magnitude", "--baseline-epochs", "2")
    assert result.exit_code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: the search stopped: --gpus-per-trial")
    parent = MlflowClient(result.tracking_uri).get_run(result.parent_run_id)
    assert parent.info.status == "FAILED"
    assert "no node of the Ray cluster" in parent.data.tags["failure_reason"]


def test_a_worker_killed_mid_trial_is_retried_and_the_search_completes(tmp_path):
    budget, name = 3, "worker-killed"
    proc = start_search(tmp_path, name, budget, *SLOW_TRIALS)
    killed = None
    try:
        def running_trial_worker():
            nonlocal killed
            for p in psutil.process_iter(["cmdline", "pid"]):
                cmd = " ".join(p.info["cmdline"] or [])
                # Ray retitles a trial's worker "ray::ImplicitFunc.train" while it runs a trial.
                if "ImplicitFunc.train" in cmd and proc.pid in {a.pid for a in p.parents()}:
                    killed = p.info["pid"]
                    os.kill(killed, signal.SIGKILL)
                    return True
            return False

        wait_until(lambda: finished_children(tmp_path, name) >= 1, 240, "a first finished trial")
        wait_until(running_trial_worker, 120, "a worker running a trial")
        proc.wait(timeout=600)
        out = (tmp_path / f"{name}.log").read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert killed is not None
    assert proc.returncode == 0, out[-3000:]
    counts = study_counts(tmp_path, name)
    assert counts.get("COMPLETE", 0) == budget, counts
    finished = [r for r in child_runs(tmp_path, name) if r.info.status == "FINISHED"]
    assert len(finished) == budget
