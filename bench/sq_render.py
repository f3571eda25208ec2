"""The BENCHMARKS.md section and the front plot of bench/search_quality.py, from its JSON alone.

The figures are recomputed here from the stored trial rows (bench/sq_metrics.py), so a section
always shows the current, validation-only selection rules, whichever version wrote the JSON."""
from __future__ import annotations

import math
from pathlib import Path

from bench import common, sq_metrics

WHAT = {
    "default": "the product's search: TPE, its enqueued points first",
    "random": "the default's enqueued points, then the random sampler",
    "enqueued-only": "the default's enqueued points alone",
    "anchored": "the default search in the anchored space (--space anchored)",
    "gp": "Optuna GPSampler, the recipe enqueued first",
    "nsga2": "NSGA-II, the recipe enqueued first",
    "screen": "the default search after screening 100 candidates without fine-tune (--screen 100)",
    "family": "the default search in the family space (--space family: target + ERK-shaped spread)",
    "recipe": "one-shot: global magnitude",
    "lamp": "one-shot: LAMP allocation",
    "erk": "one-shot: ERK allocation",
    "uniform": "one-shot: every layer at the same ratio",
}
OLD_RANDOM = "random sampler, nothing enqueued (--enqueue-recipe false)"
COLORS = {"default": "tab:blue", "random": "tab:orange", "enqueued-only": "gold", "anchored": "tab:cyan",
          "gp": "darkcyan", "nsga2": "tab:olive", "screen": "tab:pink", "family": "tab:gray",
          "recipe": "tab:red", "lamp": "tab:green", "erk": "tab:purple", "uniform": "tab:brown"}
PRECISION_LABEL = {"none": "fp32", "int8": "int8"}


def _arms(p: dict) -> list[str]:
    seen = {a for ps in p["per_seed"].values() for a in ps.get("arms", {})}
    return [a for a in WHAT if a in seen]


def _seeds(p: dict) -> list[str]:
    return sorted(p["per_seed"], key=int)


def _what(p: dict, arm: str) -> str:
    """What the arm ran, as the JSON says: a random arm without recorded enqueued points is the
    older one that enqueued nothing."""
    if arm == "random":
        runs = [ps["arms"]["random"] for ps in p["per_seed"].values() if "random" in ps.get("arms", {})]
        if runs and all("enqueued" not in r for r in runs):
            return OLD_RANDOM
    return WHAT[arm]


def _precisions(p: dict) -> list[str]:
    return p.get("precisions", ["none"])


def plot(p: dict, path: Path) -> None:
    """Per seed: each arm's validation-selected front at TEST accuracy (one-shot arms dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = _seeds(p)
    fig, axes = plt.subplots(1, max(1, len(seeds)), figsize=(5.6 * max(1, len(seeds)), 4.6), squeeze=False)
    for ax, seed in zip(axes[0], seeds):
        ps = p["per_seed"][seed]
        dense = ps.get("dense", {}).get("test_acc")
        for arm in _arms(p):
            res = ps.get("arms", {}).get(arm)
            if not res or not res["front"]:
                continue
            rows = sorted(res["front"], key=lambda r: r["cost"])
            xs, ys = [r["cost"] for r in rows], [r["test_acc"] for r in rows]
            one_shot = arm in sq_metrics.ONE_SHOT
            ax.step(xs + [1.0], ys + ys[-1:], where="post", color=COLORS[arm], ls="--" if one_shot else "-",
                    marker="s" if one_shot else "o", ms=3 if one_shot else 3.5, lw=1 if one_shot else 1.4,
                    label=f"{arm} (test HV {res['hv']['test']:.3f})")
        if dense is not None:
            ax.axhline(dense, color="grey", ls=":", lw=0.8, label=f"dense ({dense:.3f})")
            ref = dense - sq_metrics.REF_DROP
            ax.plot([0.005, sq_metrics.REF_COST, sq_metrics.REF_COST], [ref, ref, 1.0], color="k", lw=0.6, ls="-.",
                    label="HV reference box")
            ax.set_ylim(max(0.0, dense - 0.35), min(1.005, dense + 0.03))
        for b in sq_metrics.SIZE_BUDGETS:
            ax.axvline(b, color="grey", lw=0.5, alpha=0.5)
        ax.set_xscale("log")
        ax.set_xlim(0.005, 1.0)
        ax.grid(alpha=0.3, which="both")
        ax.set_title(f"{p.get('title', p['dataset'])} seed {seed}:\nvalidation-selected fronts, test accuracy",
                     fontsize=9)
        ax.set_xlabel("size / dense size (log)")
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _ms(t, fmt: str = ".4f", unit: str = "") -> str:
    """mean ± std, or `mean (n=1)` for one seed (never '± 0'); — for nothing."""
    if t is None:
        return "—"
    if isinstance(t, dict):
        mean, std, n = t["mean"], t["std"], t["n"]
    else:  # an older JSON's (mean, std)
        mean, std, n = t[0], t[1], None
    if n == 1 or std is None:
        return f"{mean:{fmt}}{unit} (n=1)"
    return f"{mean:{fmt}} ± {std:{fmt}}{unit}"


def _status(p: dict) -> str:
    """Which (arm, seed) pairs the JSON holds, and which requested ones it lacks."""
    want = p.get("arms_requested", _arms(p))
    missing = [f"{a}/seed {s}" for s in p.get("seeds", []) for a in want
               if a not in p["per_seed"].get(str(s), {}).get("arms", {})]
    return "all requested (arm, seed) pairs finished" if not missing else "NOT finished: " + ", ".join(missing)


def _arm_table(p: dict, s: dict) -> list[str]:
    budgets = sq_metrics.SIZE_BUDGETS
    lines = ["| arm | what | seeds | HV val | test HV of val front | front points | "
             + " | ".join(f"test acc at <= {b:.0%}" for b in budgets)
             + " | cost: trial cost_s (+ screening) per seed | wall per seed |",
             "|---|---|---|---|---|---|" + "---|" * len(budgets) + "---|---|"]
    for arm in _arms(p):
        a = s.get(arm)
        if not a:
            continue
        if arm in sq_metrics.ONE_SHOT:
            size = ", " + "/".join(f"{x:.0%}" for x in p["sparsities"]) + " x " + \
                "/".join(PRECISION_LABEL[q] for q in _precisions(p))
        else:
            runs = [ps["arms"][arm] for ps in p["per_seed"].values() if arm in ps.get("arms", {})]
            trials = sorted({r["budget"] for r in runs if r.get("budget") is not None})
            size = f", {'/'.join(str(b) for b in trials) or p['budget']} trials"
        cells = [_ms(a.get(f"test_acc_at_{b:g}")) for b in budgets]
        lines.append(f"| {arm} | {_what(p, arm)}{size} | {a['seeds']} | {_ms(a['hv_val'])} | {_ms(a['hv_test'])} | "
                     f"{_ms(a.get('front_size'), '.1f')} | " + " | ".join(cells)
                     + f" | {_ms(a['cost_s'], '.0f', ' s')} | {_ms(a.get('wall_s'), '.0f', ' s')} |")
    return lines


def _seed_table(p: dict) -> list[str]:
    arms = _arms(p)
    lines = ["| seed | dense val / test | " + " | ".join(f"{a} HV val / test" for a in arms) + " |",
             "|---|---|" + "---|" * len(arms)]
    for seed in _seeds(p):
        ps = p["per_seed"][seed]
        d = ps.get("dense")
        if not d:
            continue
        cells = []
        for a in arms:
            r = ps["arms"].get(a)
            cells.append("—" if r is None else f"{r['hv']['val']:.4f} / {r['hv']['test']:.4f}")
        lines.append(f"| {seed} | {d['val_acc']:.4f} / {d['test_acc']:.4f} | " + " | ".join(cells) + " |")
    return lines


def _point(r: dict) -> str:
    q = f" {PRECISION_LABEL.get(r['quantize'], r['quantize'])}" if r.get("quantize") == "int8" else ""
    return f"{r['cost']:.3f}{q}: {r['test_acc']:.4f} ({r['val_acc']:.4f})"


def _front_table(p: dict) -> list[str]:
    """Each arm's validation-selected front, per seed: size / dense, test accuracy (val accuracy)."""
    lines = ["Validation-selected fronts per seed, each point `size / dense [int8]: test acc (val acc)` "
             "(chosen on validation accuracy; test accuracy only reported):", "",
             "| seed | arm | front |", "|---|---|---|"]
    for seed in _seeds(p):
        for arm in _arms(p):
            r = p["per_seed"][seed].get("arms", {}).get(arm)
            if r is not None:
                lines.append(f"| {seed} | {arm} | " + ("; ".join(_point(x) for x in r["front"]) or "(none)") + " |")
    return [*lines, ""]


def _distinct_table(p: dict) -> list[str]:
    """The default front's points against the one-shot allocations at their own overall target."""
    rows = []
    for seed in _seeds(p):
        d = p["per_seed"][seed].get("arms", {}).get("default")
        for r in (d or {}).get("front", []):
            gap = r.get("one_shot_gap")
            if gap is None:
                continue
            mark = " **(not one-shot)**" if gap["max_layer_diff"] >= sq_metrics.GAP_MIN - 1e-9 else ""
            rows.append(f"| {seed} | {r['cost']:.3f} | {r['val_acc']:.4f} | {r['test_acc']:.4f} | {r.get('method', '')}"
                        f"{' ' + r['magnitude_scope'] if r.get('magnitude_scope') else ''} | "
                        f"{PRECISION_LABEL.get(r.get('quantize'), r.get('quantize') or '')} | {gap['target']:.3f} | "
                        f"{gap['nearest']} | {gap['max_layer_diff']:.3f} ({gap['layer']}){mark} |")
    if not rows:
        return []
    return [f"The default search's validation front against one-shot pruning: for each point, its overall target "
            "(the fraction of prunable weights its per-layer ratios remove, ratios as MLflow's `sparsity.<layer>` "
            "params: filter fractions for filter methods), the nearest one-shot allocation at that same target "
            "(global, LAMP, ERK, uniform, the product's allocation code) and the largest per-layer difference "
            f"from it; >= {sq_metrics.GAP_MIN} in some layer: not a one-shot allocation.", "",
            "| seed | size / dense | val acc | test acc | method | precision | target | nearest one-shot | "
            "largest layer difference |", "|---|---|---|---|---|---|---|---|---|", *rows, ""]


def _one_shot_table(p: dict) -> list[str]:
    """Each one-shot point: test accuracy (size / dense size), per seed, target and precision."""
    arms = [a for a in _arms(p) if a in sq_metrics.ONE_SHOT]
    if not arms:
        return []
    precisions = _precisions(p)
    cols = [(a, q) for a in arms for q in precisions]
    lines = ["One-shot points, test accuracy (size / dense size) after the same fine-tune, BatchNorm "
             "re-estimation and encoding as a trial:", "",
             "| seed | sparsity | " + " | ".join(f"{a} {PRECISION_LABEL[q]}" for a, q in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for seed in _seeds(p):
        got = p["per_seed"][seed].get("arms", {})
        for sp in p["sparsities"]:
            cells = []
            for a, q in cols:
                hit = [r for r in got.get(a, {}).get("trials", [])
                       if math.isclose(r.get("sparsity", -1), sp) and r.get("quantize", "none") == q]
                cells.append(f"{hit[0]['test_acc']:.4f} ({hit[0]['cost']:.3f})" if hit else "—")
            lines.append(f"| {seed} | {sp:.0%} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _yn(v) -> str:
    return "not measured" if v is None else ("**met**" if v else "**MISSED**")


def _goal_lines(p: dict, g: dict) -> list[str]:
    others = [a for a in ("random", "enqueued-only", "anchored") if any(a in ps.get("arms", {})
                                                                        for ps in p["per_seed"].values())]
    lines = ["| seed | default / best one-shot HV (val, test) | "
             + " | ".join(f"default / {a} HV (val, test)" for a in others)
             + f" | front points not a one-shot allocation (goal >= {sq_metrics.GOAL_DISTINCT}) | one-shot points "
             "dominated on test (val-picked front point at <= size) | drop at <= 5% (goal <= 1 pt) | drop at <= 2% "
             "(goal <= 3 pt) | cost: default / one-shot arms |",
             "|---|---|" + "---|" * len(others) + "---|---|---|---|---|"]
    for seed, s in sorted(g.get("per_seed", {}).items(), key=lambda kv: int(kv[0])):
        arms = p["per_seed"][seed]["arms"]

        def ratio(key, s=s):
            r = s.get(key)
            return "—" if r is None else f"{r['val']:.3f}x, {r['test']:.3f}x"

        def drop(key, s=s):
            d = s[key]
            return "no point that small" if d["drop"] is None else f"{100 * d['drop']:+.2f} pt"

        best = s.get("best_one_shot")
        best_cell = "—" if best is None else f"{ratio('hv_ratio_to_best_one_shot')} (vs {best['val']}, {best['test']})"
        dist = s.get("distinct_front_points")
        dist_cell = "not recorded" if dist is None else f"{dist['count']} of {dist['of']}"
        dom = ", ".join(f"{a} {c}" for a, c in s["dominated_test"].items()) or "—"
        one_shot_cost = [arms[a]["cost_s"] for a in sq_metrics.ONE_SHOT if a in arms]
        cost = (f"{arms['default']['cost_s']:.0f} s / "
                + (f"{sum(one_shot_cost) / len(one_shot_cost):.0f} s each" if one_shot_cost else "—"))
        lines.append(f"| {seed} | {best_cell} | " + " | ".join(ratio(f"hv_ratio_to_{a}") for a in others)
                     + f" | {dist_cell} | {dom} | {drop('drop_at_0.05')} | {drop('drop_at_0.02')} | {cost} |")

    def both(v):
        return "not measured" if v is None else f"val {_yn(v['val'])}, test {_yn(v['test'])}"

    same = [seed for seed in _seeds(p) if {"default", "random"} <= set(p["per_seed"][seed].get("arms", {}))
            and _front_key(p["per_seed"][seed]["arms"]["default"]) == _front_key(p["per_seed"][seed]["arms"]["random"])]
    if same:
        lines += ["", f"In seed {', '.join(same)} the default and random searches' validation fronts are the same trials "
                  "(same size, same accuracies): configurations both searches ran identically; no other "
                  "trial of either reached the front, so HV cannot separate them there."]
    lines += ["", f"Goals (every seed; test is the figure, val shown beside it): default HV >= "
              f"{sq_metrics.GOAL_VS_ONE_SHOT}x the best one-shot arm (each arm's front over its "
              f"{' and '.join(PRECISION_LABEL[q] for q in _precisions(p))} points): "
              f"{both(g.get('hv_ge_1.05x_best_one_shot_every_seed'))}; default HV >= {sq_metrics.GOAL_VS_RANDOM}x "
              f"random: {both(g.get('hv_ge_1.03x_random_every_seed'))}; >= {sq_metrics.GOAL_DISTINCT} front points "
              f"whose ratios differ by >= {sq_metrics.GAP_MIN} in some layer from the nearest one-shot allocation at "
              f"their target: {_yn(g.get('distinct_ge_2_every_seed'))}; one-shot points dominated on test: "
              f"**{g.get('dominated_test', '—')}**; within 1 pt of dense at <= 5% of dense bytes: "
              f"{_yn(g.get('within_1pt_at_5pct_every_seed'))}; within 3 pt at <= 2%: "
              f"{_yn(g.get('within_3pt_at_2pct_every_seed'))}. Every pick is made on validation accuracy: a drop is "
              "dense test accuracy minus the test accuracy of the default trial with the best validation accuracy at "
              "that size; a one-shot point is dominated when the front point with the best validation accuracy at "
              "no more size has at least its test accuracy."]
    return lines


def _front_key(arm: dict) -> list:
    return sorted((r["size_bytes"], r["val_acc"], r["test_acc"]) for r in arm["front"])


def _enqueued_lines(p: dict) -> list[str]:
    got = [(seed, r["enqueued"]) for seed in _seeds(p)
           for r in [p["per_seed"][seed].get("arms", {}).get("default")] if r and r.get("enqueued") is not None]
    if not got:
        return []
    seed, points = got[0]
    same = all(pts == points for _, pts in got)
    text = "; ".join(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in pt.items())
                     for pt in points)
    return [f"Enqueued points (search.seeding.initial_points, the default's; `random` and `enqueued-only` were given "
            f"exactly these): {len(points)}{'' if same else f' in seed {seed} (other seeds differ)'}: {text or 'none'}.",
            ""]


def markdown(p: dict, png: Path) -> str:
    summary = sq_metrics.summarize(p["per_seed"], list(WHAT))
    g = _goals(p)
    sizes = next((ps for ps in p["per_seed"].values() if "n_val" in ps), {})
    split = f"{sizes.get('n_train', '?')}/{sizes.get('n_val', '?')}/{sizes.get('n_test', '?')}"
    sha = f" Checkpoint sha256 `{p['checkpoint_sha256']}` (checked before the run)." if p.get("checkpoint_sha256") else ""
    lines = [
        f"## Search quality: {p.get('title', p['dataset'])}", "",
        f"Command: `{p['command']}`  ",
        f"Search flags: `{' '.join(p['search_flags'])}` (split train/val/test {split}); budget {p['budget']} per search "
        f"arm, 2 concurrent trials of 1 CPU each; one-shot arms at "
        + "/".join(f"{x:.0%}" for x in p["sparsities"]) + " sparsity in "
        + " and ".join(PRECISION_LABEL[q] for q in _precisions(p)) + ", the same trial code as a search trial. "
        f"Seeds {p.get('seeds')}: {_status(p)}.{sha}  ",
        common.machine_line(p["machine"]) + " A shared 2-core VM (other engineers' tests ran meanwhile): "
        "wall and cost_s figures are inflated by their load.", "",
        f"Hypervolume: reference point cost ratio {sq_metrics.REF_COST} and accuracy = dense accuracy "
        f"(same split, same seed) - {100 * sq_metrics.REF_DROP:.0f} pt, normalized by that box "
        f"({sq_metrics.REF_COST} x {sq_metrics.REF_DROP}), so 1.0 = dense accuracy at zero size; cost = size_bytes / "
        "dense size_bytes. `HV val` covers every trial on validation accuracy (what the search sees); `test HV` "
        "re-scores the validation-selected front on test accuracy. `test acc at <= x%`: test accuracy of the trial "
        "with the best validation accuracy at <= x% of dense bytes (— where an arm has no trial that small in "
        "some seed). Mean ± std over seeds; n=1 where one seed finished.", "",
        *_arm_table(p, summary), "", *_seed_table(p), "", *_enqueued_lines(p), *_screen_lines(p), *_front_table(p),
        *_distinct_table(p), *_one_shot_table(p), *_goal_lines(p, g), "",
        f"![fronts on {p['dataset']} (test accuracy)](bench/results/{png.name})",
    ]
    return "\n".join(lines)


def _screen_lines(p: dict) -> list[str]:
    """The screening arm's fidelity: how well the score without fine-tune ranked the trials it chose."""
    rows = [(seed, ps["arms"]["screen"]["screen"]) for seed, ps in sorted(p["per_seed"].items())
            if ps.get("arms", {}).get("screen", {}).get("screen")]
    if not rows:
        return []
    return ["Screening (`screen` arm): Spearman rank correlation of screened vs fine-tuned val accuracy over the "
            "trials it enqueued; its wall time is counted in the arm's cost. "
            + "; ".join(f"seed {seed}: {s.get('screen_spearman', float('nan')):.2f} over "
                        f"{s.get('screen_pairs', 0):.0f} trials, {s.get('screen_wall_s', 0):.0f} s" for seed, s in rows),
            ""]


def _goals(p: dict) -> dict:
    """sq_metrics.goals of the JSON's trials; the random goal is not measured where the random arm
    is the older one that enqueued nothing (not the arm the goal is about)."""
    g = sq_metrics.goals(p["per_seed"])
    if _what(p, "random") == OLD_RANDOM:
        g["hv_ge_1.03x_random_every_seed"] = None
    return g


def summary_row(p: dict) -> tuple[str, str]:
    s = sq_metrics.summarize(p["per_seed"], list(WHAT))
    g = _goals(p)
    parts = [f"{arm} {_ms(s[arm]['hv_test'], '.3f')}" for arm in _arms(p) if arm in s]
    fig = f"test HV (ref cost {sq_metrics.REF_COST}, dense - {100 * sq_metrics.REF_DROP:.0f} pt): " + ", ".join(parts)

    def test(v):
        return "—" if v is None else ("met" if v["test"] else "MISSED")

    goal = (f">= {sq_metrics.GOAL_VS_ONE_SHOT}x best one-shot: {test(g.get('hv_ge_1.05x_best_one_shot_every_seed'))}; "
            f">= {sq_metrics.GOAL_VS_RANDOM}x random: {test(g.get('hv_ge_1.03x_random_every_seed'))}; "
            f">= {sq_metrics.GOAL_DISTINCT} non-one-shot front points: "
            f"{_yn(g.get('distinct_ge_2_every_seed')).strip('*')}; dominated {g.get('dominated_test', '—')}; "
            f"<=1 pt at 5%: {_yn(g.get('within_1pt_at_5pct_every_seed')).strip('*')}; "
            f"<=3 pt at 2%: {_yn(g.get('within_3pt_at_2pct_every_seed')).strip('*')}")
    return fig, goal
