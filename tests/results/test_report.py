"""The search run's description: the answer to "which trial is the smallest within 1 point of dense,
and its test accuracy", then the front, every row a link to its trial in the training view."""
from __future__ import annotations

import re
from types import SimpleNamespace

from search.results.report import front_markdown

RUNS = {rid: SimpleNamespace(info=SimpleNamespace(run_name=name)) for rid, name in
        (("r1", "fpgm-3"), ("r2", "magnitude-7"), ("r3", "hybrid-1"))}
ROWS = [  # the combined front, cheapest first
    {"method": "fpgm", "val_acc": 0.90, "test_acc": 0.89, "size_ratio": 0.04, "params": 1000.0, "run_id": "r1"},
    {"method": "magnitude", "val_acc": 0.955, "test_acc": 0.948, "size_ratio": 0.09, "params": 5000.0, "run_id": "r2"},
    {"method": "hybrid", "val_acc": 0.97, "test_acc": 0.96, "size_ratio": 0.5, "params": 9000.0, "run_id": "r3"},
]
DENSE = {"val_acc": 0.962, "size_bytes": 350_000.0}


def test_the_smallest_within_one_point_of_dense_comes_first_with_its_test_accuracy():
    text = front_markdown(ROWS, RUNS, "7", DENSE, "size_bytes")
    answer = next(line for line in text.splitlines() if line.startswith("Smallest within 1 point"))
    # 0.90 is 6 points below dense; 0.955 is within 1 point and smaller than 0.97's trial.
    assert "[magnitude-7](#/experiments/7/runs/r2?workflowType=machine_learning)" in answer
    assert "9.0% of dense size" in answer and "test_acc 0.9480" in answer


def test_every_front_row_links_its_trial_in_the_training_view():
    text = front_markdown(ROWS, RUNS, "7", DENSE, "size_bytes")
    table = [line for line in text.splitlines() if line.startswith("| [")]
    assert len(table) == len(ROWS)
    for line, row in zip(table, ROWS):
        link = re.search(r"\]\(([^)]*)\)", line).group(1)
        assert link == f"#/experiments/7/runs/{row['run_id']}?workflowType=machine_learning"
        assert f"{row['test_acc']:.4f}" in line


def test_no_trial_close_to_dense_says_nothing_false():
    text = front_markdown(ROWS[:1], RUNS, "7", DENSE, "size_bytes")
    assert "Smallest within" not in text and "fpgm-3" in text
