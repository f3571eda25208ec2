"""Figures of bench/search_quality.py, computed from the trial rows it stores: fronts (selected on
validation accuracy), hypervolume with a reference point in the region that matters, the best
accuracy at a size budget, whether a front dominates the one-shot points, and the goals of issue 10.

A trial row is a dict with run_id, val_acc, test_acc, size_bytes, cost (size / dense size) and cost_s.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from bench import common

# Reference point: cost ratio REF_COST, accuracy = dense accuracy (same split) - REF_DROP.
REF_COST = 0.25
REF_DROP = 0.15
SIZE_BUDGETS = (0.10, 0.05, 0.02)  # fractions of dense bytes
ONE_SHOT = ("recipe", "lamp", "erk", "uniform")


def hv_reference(dense: dict) -> dict:
    """The reference point of one seed, per split, and the box that normalizes the HV."""
    return {split: {"cost": REF_COST, "acc": dense[f"{split}_acc"] - REF_DROP} for split in ("val", "test")}


def front_rows(rows: list[dict]) -> list[dict]:
    """Validation-selected Pareto front (sorted by cost), each row keeping its test accuracy."""
    from search.results.pareto import Point, front

    by_id = {r["run_id"]: r for r in rows}
    return [by_id[p.key] for p in front(Point(r["run_id"], r["val_acc"], r["cost"]) for r in rows)]


def normalized_hv(rows: list[dict], acc_key: str, ref_acc: float) -> float:
    """Hypervolume inside [0, REF_COST] x [ref_acc, ...], divided by REF_COST * REF_DROP, so 1.0 is
    the dense model's accuracy at zero size."""
    from search.results.pareto import Point, hypervolume

    pts = [Point(r["run_id"], r[acc_key], r["cost"]) for r in rows]
    return hypervolume(pts, (REF_COST, ref_acc)) / (REF_COST * REF_DROP)


def arm_hv(rows: list[dict], dense: dict) -> dict:
    """`val`: HV of every trial on validation accuracy (what the search sees); `test`: HV of the
    validation-selected front re-scored on test accuracy."""
    ref = hv_reference(dense)
    return {"val": normalized_hv(rows, "val_acc", ref["val"]["acc"]),
            "test": normalized_hv(front_rows(rows), "test_acc", ref["test"]["acc"])}


def at_budgets(rows: list[dict]) -> dict:
    """Per size budget: the test accuracy of the trial with the best validation accuracy at <= that
    fraction of dense bytes (honest: chosen on val), and the best test accuracy there (oracle)."""
    out = {}
    for b in SIZE_BUDGETS:
        ok = [r for r in rows if r["cost"] <= b + 1e-12]
        if not ok:
            out[f"{b:g}"] = None
            continue
        pick = max(ok, key=lambda r: (r["val_acc"], -r["cost"]))
        out[f"{b:g}"] = {"test_acc_val_selected": pick["test_acc"], "val_acc": pick["val_acc"],
                         "cost": pick["cost"], "run_id": pick["run_id"],
                         "best_test_acc": max(r["test_acc"] for r in ok)}
    return out


def arm_result(rows: list[dict], dense: dict, wall_s: float, **extra) -> dict:
    return {"trials": rows, "front": front_rows(rows), "hv": arm_hv(rows, dense), "at_budget": at_budgets(rows),
            "cost_s": sum(r.get("cost_s") or 0.0 for r in rows), "wall_s": wall_s, "n_trials": len(rows), **extra}


def domination(points: list[dict], front: list[dict]) -> list[dict]:
    """Per one-shot point: the front (selected on val) at no more size, on test accuracy."""
    out = []
    for r in points:
        cheaper = [p for p in front if p["cost"] <= r["cost"] + 1e-12]
        best = max((p["test_acc"] for p in cheaper), default=math.nan)
        out.append({"run_id": r["run_id"], "cost": r["cost"], "test_acc": r["test_acc"],
                    "dominated_test": bool(cheaper) and best >= r["test_acc"], "test_margin": best - r["test_acc"]})
    return out


def summarize(per_seed: dict, arms: Sequence[str]) -> dict:
    """Mean ± std over the seeds where an arm finished, per figure."""
    out = {}
    for arm in arms:
        done = [ps["arms"][arm] for ps in per_seed.values() if arm in ps.get("arms", {})]
        if not done:
            continue
        out[arm] = {"seeds": len(done), "hv_val": common.mean_std([a["hv"]["val"] for a in done]),
                    "hv_test": common.mean_std([a["hv"]["test"] for a in done]),
                    "cost_s": common.mean_std([a["cost_s"] for a in done])}
        for b in SIZE_BUDGETS:
            vals = [a["at_budget"][f"{b:g}"] for a in done]
            got = [v["test_acc_val_selected"] for v in vals if v]
            out[arm][f"test_acc_at_{b:g}"] = common.mean_std(got) if len(got) == len(done) else None
    return out


def goals(per_seed: dict) -> dict:
    """Issue 10's goals, per seed (paired: same baseline, same seed), where the arms they need finished."""
    per, dominated, total = {}, 0, 0
    for seed, ps in per_seed.items():
        arms = ps.get("arms", {})
        if "default" not in arms:
            continue
        d, g = arms["default"], {}
        for other, key in (("random", "hv_ratio_to_random"), ("lamp", "hv_ratio_to_lamp")):
            if other in arms:
                g[key] = {split: _ratio(d["hv"][split], arms[other]["hv"][split]) for split in ("val", "test")}
        g["dominated_test"] = {}
        for arm in ONE_SHOT:
            if arm in arms:
                dom = domination(arms[arm]["trials"], d["front"])
                g["dominated_test"][arm] = f"{sum(x['dominated_test'] for x in dom)}/{len(dom)}"
                dominated += sum(x["dominated_test"] for x in dom)
                total += len(dom)
        dense = ps["dense"]["test_acc"]
        for budget, tol in (("0.05", 0.01), ("0.02", 0.03)):
            hit = d["at_budget"].get(budget)
            drop = None if hit is None else dense - hit["test_acc_val_selected"]
            g[f"drop_at_{budget}"] = {"drop": drop, "tolerance": tol, "met": drop is not None and drop <= tol + 1e-12}
        per[str(seed)] = g
    return {"per_seed": per, "dominated_test": f"{dominated}/{total}",
            "hv_ge_1.05x_random_every_seed": _every(per, "hv_ratio_to_random", 1.05),
            "hv_above_lamp_every_seed": _every(per, "hv_ratio_to_lamp", 1.0, strict=True),
            "within_1pt_at_5pct_every_seed": _all_met(per, "drop_at_0.05"),
            "within_3pt_at_2pct_every_seed": _all_met(per, "drop_at_0.02")}


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else (math.inf if a > 0 else math.nan)


def _every(per: dict, key: str, at_least: float, strict: bool = False) -> dict | None:
    """{split: met in every seed} over the seeds that have the comparison; None if none has."""
    have = [g[key] for g in per.values() if key in g]
    if not have:
        return None
    ok = (lambda r: r > at_least) if strict else (lambda r: r >= at_least)  # noqa: E731
    return {split: all(ok(r[split]) for r in have) for split in ("val", "test")}


def _all_met(per: dict, key: str) -> bool | None:
    return all(g[key]["met"] for g in per.values()) if per else None
