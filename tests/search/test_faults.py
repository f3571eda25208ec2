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
    return subprocess.Popen(args, cwd=REPO, start_new_session=True, stdout=log, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # the log is read while it runs


def wait_until(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def children_in(home: Path, name: str, status: str) -> int:
    if not (home / "searches" / f"{name}.json").exists():  # see finished_children
        return 0
    try:
        return sum(r.info.status == status for r in child_runs(home, name))
    except Exception:  # noqa: BLE001 - the database may be mid-creation
        return 0


# Trials of several seconds (digits, 40 fine-tune epochs), so a kill 1 s into one lands inside it.
KILL_TRIALS = ("--methods", "magnitude,taylor", "--finetune-epochs", "40", "--max-concurrent", "1")


def mid_trial(home: Path, name: str, finished: int) -> bool:
    """At least `finished` trials done and one running for a second: a kill now interrupts it."""
    if children_in(home, name, "FINISHED") < finished:
        return False
    try:
        runs = child_runs(home, name)
    except Exception:  # noqa: BLE001 - the database may be mid-creation
        return False
    now_ms = time.time() * 1000
    return any(r.info.status == "RUNNING" and now_ms - r.info.start_time > 1000 for r in runs)


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
    result = run_small_search(tmp_path, "diverge", 2, "--methods", "magnitude", "--finetune-lr", "1000")
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


def kill_when(proc: subprocess.Popen, predicate, what: str) -> None:
    try:
        wait_until(predicate, 240, what)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and every Ray process it started
        proc.wait()


def resume_args(home: Path, name: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "search.run", "--home", str(home), "--resume", name, *extra]


def counted(home: Path, name: str) -> list:
    from search.resume import counted_trials

    return counted_trials(optuna.load_study(study_name=name, storage=f"sqlite:///{home / 'optuna.db'}"))


def test_sigkilled_driver_resumes_to_budget_without_loss_or_duplicates(tmp_path):
    """Killed twice mid-search, then resumed with a larger budget: every enqueued point (one per
    method, then the recipe) ran to an end, interrupted trials ran again with the same
    parameters and are not counted, and the budget counts exactly the trials that ended."""
    from search.config import load_config
    from search.resume import was_interrupted
    from search.seeding import initial_points

    budget, name = 6, "killed"
    proc = start_search(tmp_path, name, budget, *KILL_TRIALS)
    kill_when(proc, lambda: mid_trial(tmp_path, name, 2), "a trial running after two finished")
    assert len(counted(tmp_path, name)) < budget
    # Killed again, during the first resume.
    log = open(tmp_path / "resume1.log", "w")  # noqa: SIM115 - closed when the process ends
    proc = subprocess.Popen(resume_args(tmp_path, name), cwd=REPO, start_new_session=True, stdout=log,
                            stderr=subprocess.STDOUT, text=True)
    finished = children_in(tmp_path, name, "FINISHED")  # the first kill's orphan is RUNNING until reconciled
    kill_when(proc, lambda: mid_trial(tmp_path, name, finished + 1), "a trial running after one more finished")
    done = len(counted(tmp_path, name))
    assert done < budget
    too_small = subprocess.run(resume_args(tmp_path, name, "--budget", "1"), cwd=REPO, capture_output=True,
                               text=True, timeout=120)
    assert too_small.returncode == 2 and f"--budget: 1 is not accepted; search 'killed' already ran {done}" \
        in too_small.stderr, too_small.stderr[-2000:]

    resumed = subprocess.run(resume_args(tmp_path, name, "--budget", str(budget + 1)), cwd=REPO,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"budget {budget} -> {budget + 1} trials" in resumed.stdout
    budget += 1
    ended = counted(tmp_path, name)
    assert len(ended) == budget
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    states = {t.state for t in study.trials}
    assert optuna.trial.TrialState.RUNNING not in states and optuna.trial.TrialState.WAITING not in states
    # Nothing the kills interrupted is lost: each ran again with exactly its parameters.
    interrupted = [t for t in study.trials if was_interrupted(t)]
    assert len(interrupted) + len(ended) == len(study.trials)
    assert interrupted, "the kills interrupted no trial: the test does not test resuming"
    for t in interrupted:
        assert any(e.params == t.params for e in ended), t.params
    # Every enqueued point ran: the recipe's smallest point is on the resumed search's record.
    cfg = load_config(["--budget", str(budget - 1), *SMALL_SEARCH_ARGS, *KILL_TRIALS])
    for point in initial_points(cfg):
        assert any(all(e.params.get(k) == v for k, v in point.items()) for e in ended), point
    # The resumed sampler continues the study instead of replaying its first draws.
    complete = [t for t in ended if t.state == optuna.trial.TrialState.COMPLETE]
    configs = [tuple(sorted(t.params.items())) for t in complete]
    assert len(configs) == len(set(configs)), [t.params for t in complete]
    finished = [r for r in child_runs(tmp_path, name) if r.info.status == "FINISHED"]
    trial_numbers = [r.data.params["optuna_trial"] for r in finished]
    assert len(trial_numbers) == len(set(trial_numbers)) == len(complete)  # one run per completed trial
    assert all(r.info.status != "RUNNING" for r in child_runs(tmp_path, name))
    # Progress goes on from the trials finished before the kill: the last line is [budget/budget]
    # and its front counts them too (the same front the final report tags).
    progress = [line for line in resumed.stdout.splitlines() if line.startswith("[")]
    on_front = sum(r.data.tags.get("pareto") == "true" for r in finished)
    last_ok = [line for line in progress if "front:" in line][-1]  # a failed trial's line has none
    assert progress[-1].startswith(f"[{budget}/{budget}]") and f"front: {on_front} point" in last_ok, progress
    failed = sum(t.state == optuna.trial.TrialState.FAIL for t in ended)
    assert f"{failed} failed" in resumed.stdout  # the summary counts Optuna's failures, not the interrupted


def test_a_search_killed_during_its_baseline_says_to_rerun_it(tmp_path):
    name = "early"
    args = ("--methods", "magnitude", "--baseline-epochs", "200")
    proc = start_search(tmp_path, name, 2, *args)
    kill_when(proc, lambda: "epoch 1/" in (tmp_path / f"{name}.log").read_text(), "the baseline's first epoch")
    resumed = subprocess.run(resume_args(tmp_path, name), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 2
    lines = resumed.stderr.strip().splitlines()
    assert len(lines) == 1 and "has nothing to resume: run its original command again" in lines[0], lines


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
