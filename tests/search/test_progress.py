"""The per-trial progress line: counts, front size (carried over on a resume) and time left."""
from __future__ import annotations

from types import SimpleNamespace

from search.results.cli_kit import printed_logs
from search.results.pareto import Point
from search.tune import Progress


def _trial(i: int, acc: float, size: float, method: str = "magnitude"):
    return SimpleNamespace(trial_id=f"t{i}", config={"method": method},
                           last_result={"val_acc": acc, "size_bytes": size, "cost_s": 1.0})


def _run(progress: Progress, trials) -> list[str]:
    lines: list[str] = []
    with printed_logs(lines.append):  # the lines the command line prints
        for t in trials:
            progress.on_trial_complete(0, [], t)
    return lines


def test_a_resumed_search_counts_on_from_the_trials_finished_before():
    before = [Point("a", 0.90, 0.2), Point("b", 0.95, 0.6)]  # both on the front
    resumed = Progress(4, "size_bytes", 100.0, done=2, points=before)
    fresh = Progress(4, "size_bytes", 100.0)
    dominated = _trial(3, 0.80, 90.0)
    (line,) = _run(resumed, [dominated])
    assert line.startswith("[3/4]") and "front: 2 points" in line
    (line,) = _run(fresh, [dominated])
    assert line.startswith("[1/4]") and "front: 1 point |" in line


def test_time_left_is_shown_until_the_last_trial():
    lines = _run(Progress(2, "size_bytes", 100.0), [_trial(1, 0.9, 50.0), _trial(2, 0.95, 40.0)])
    assert "s left" in lines[0] and "s left" not in lines[1]
    assert "front: 1 point |" in lines[1]  # the second dominates the first


def test_a_failed_trial_counts_but_adds_no_point():
    t = SimpleNamespace(trial_id="t1", config={"method": "taylor"}, last_result={"failure_reason": "DivergedError: nan"})
    progress = Progress(3, "size_bytes", 100.0)
    (line,) = _run(progress, [t])
    assert line.startswith("[1/3] taylor FAILED: DivergedError") and progress.points == []
