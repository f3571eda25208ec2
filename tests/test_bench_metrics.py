"""bench/sq_metrics.py: every choice among trials is made on validation accuracy, one seed reads
n=1, and the 'not a one-shot allocation' count compares a trial with the nearest allocation at
its own target. Pure functions on hand-made rows: no training."""
from __future__ import annotations

import pytest

from bench import sq_metrics


def _row(run_id, val, test, cost, **extra):
    return {"run_id": run_id, "val_acc": val, "test_acc": test, "cost": cost, "size_bytes": cost * 1000,
            "cost_s": 1.0, **extra}


def test_a_size_budget_pick_is_the_best_validation_trial_not_the_best_test_trial():
    rows = [_row("a", 0.90, 0.80, 0.04), _row("b", 0.85, 0.95, 0.03), _row("c", 0.99, 0.99, 0.2)]
    pick = sq_metrics.at_budgets(rows)["0.05"]
    assert pick["run_id"] == "a" and pick["test_acc_val_selected"] == 0.80
    assert "best_test_acc" not in pick  # no test-selected figure is kept beside it
    assert sq_metrics.at_budgets(rows)["0.02"] is None


def test_domination_compares_the_val_picked_front_point_on_test():
    # Front on val: a (0.02, val .90) then b (0.04, val .95); b's test is worse than a's.
    front = sq_metrics.front_rows([_row("a", 0.90, 0.97, 0.02), _row("b", 0.95, 0.91, 0.04)])
    one_shot = [_row("os", 0.93, 0.93, 0.05), _row("tiny", 0.5, 0.5, 0.01)]
    dom = {d["run_id"]: d for d in sq_metrics.domination(one_shot, front)}
    # A user at <= 0.05 takes b (best val), whose test 0.91 < 0.93: not dominated, although a's
    # test accuracy (0.97) would have been; nothing on the front is as small as `tiny`.
    assert dom["os"]["picked"] == "b" and not dom["os"]["dominated_test"]
    assert dom["os"]["test_margin"] == pytest.approx(-0.02)
    assert dom["tiny"]["picked"] is None and not dom["tiny"]["dominated_test"]


def test_one_seed_reads_n_1_never_plus_minus_0():
    arm = sq_metrics.arm_result([_row("a", 0.9, 0.9, 0.04)], {"val_acc": 0.95, "test_acc": 0.95}, 10.0)
    s = sq_metrics.summarize({"0": {"arms": {"default": arm}}}, ["default"])["default"]
    assert s["seeds"] == 1 and s["hv_test"]["n"] == 1 and s["hv_test"]["std"] is None
    two = sq_metrics.summarize({"0": {"arms": {"default": arm}}, "1": {"arms": {"default": arm}}}, ["default"])
    assert two["default"]["hv_test"]["std"] == 0.0 and two["default"]["hv_test"]["n"] == 2

    from bench.sq_render import _ms

    assert _ms(s["hv_test"]) == f"{s['hv_test']['mean']:.4f} (n=1)"
    assert "±" in _ms(two["default"]["hv_test"])


SIZES = {"conv": 100, "fc": 300}


def _allocate(name, target):
    """Toy allocations: uniform, and one that prunes fc harder than conv."""
    if name == "uniform":
        return {"conv": target, "fc": target}
    fc = min(1.0, target * 4 / 3)
    return {"conv": (target * 400 - fc * 300) / 100, "fc": fc}


def test_the_gap_is_to_the_nearest_allocation_at_the_trials_own_target():
    # 0.5 everywhere is exactly uniform at target 0.5.
    same = sq_metrics.one_shot_gap({"conv": 0.5, "fc": 0.5}, SIZES, _allocate, ("uniform", "skewed"))
    assert same["target"] == pytest.approx(0.5) and same["nearest"] == "uniform" and same["max_layer_diff"] == 0
    # conv 0.2, fc 0.6: target 0.5; uniform differs by 0.3 in conv, skewed (conv 0.0, fc 0.667) by 0.2.
    gap = sq_metrics.one_shot_gap({"conv": 0.2, "fc": 0.6}, SIZES, _allocate, ("uniform", "skewed"))
    assert gap["target"] == pytest.approx(0.5)
    assert gap["nearest"] == "skewed" and gap["max_layer_diff"] == pytest.approx(0.2) and gap["layer"] == "conv"
    assert gap["by_allocation"]["uniform"] == pytest.approx(0.3)
    # A trial without a ratio for some layer has no gap (not counted either way).
    assert sq_metrics.one_shot_gap({"conv": 0.2}, SIZES, _allocate, ("uniform",)) is None


def test_distinct_counts_front_points_at_least_0_1_from_every_allocation():
    def gap(d):
        return {"max_layer_diff": d, "nearest": "lamp", "layer": "fc", "target": 0.5}

    rows = [_row("a", 0.9, 0.9, 0.1, one_shot_gap=gap(0.1)), _row("b", 0.9, 0.9, 0.1, one_shot_gap=gap(0.0999)),
            _row("c", 0.9, 0.9, 0.1, one_shot_gap=None), _row("d", 0.9, 0.9, 0.1, one_shot_gap=gap(0.4))]
    assert [r["run_id"] for r in sq_metrics.distinct(rows)] == ["a", "d"]


def test_goals_compare_default_with_the_best_one_shot_arm_and_random():
    dense = {"val_acc": 1.0, "test_acc": 1.0}

    def arm(points, gap=None):
        return sq_metrics.arm_result([_row(f"{i}", v, t, c, one_shot_gap=gap) for i, (v, t, c) in enumerate(points)],
                                     dense, 1.0)

    far = {"max_layer_diff": 0.3, "nearest": "lamp", "layer": "fc", "target": 0.9}
    arms = {"default": arm([(0.95, 0.95, 0.05), (0.99, 0.99, 0.1)], far),
            "random": arm([(0.93, 0.93, 0.05)]),
            "lamp": arm([(0.90, 0.90, 0.05), (0.92, 0.92, 0.06)]), "recipe": arm([(0.94, 0.94, 0.05)])}
    g = sq_metrics.goals({"0": {"arms": arms, "dense": dense}})
    s = g["per_seed"]["0"]
    assert s["best_one_shot"]["test"] == "recipe"
    assert s["hv_ratio_to_best_one_shot"]["test"] == pytest.approx(arms["default"]["hv"]["test"]
                                                                   / arms["recipe"]["hv"]["test"])
    assert s["distinct_front_points"] == {"count": 2, "of": 2, "recorded": 2}
    assert g["distinct_ge_2_every_seed"] is True and g["hv_ge_1.03x_random_every_seed"]["test"] is True
