"""The BENCHMARKS.md section and the front plot of bench/search_quality.py, from its JSON alone."""
from __future__ import annotations

from pathlib import Path

from bench import common, sq_metrics

WHAT = {
    "default": "the product's search: TPE, the recipe enqueued first",
    "random": "random sampler, nothing enqueued",
    "gp": "Optuna GPSampler, the recipe enqueued first",
    "nsga2": "NSGA-II, the recipe enqueued first",
    "screen": "the default search after screening 100 candidates without fine-tune (--screen 100)",
    "family": "the default search in the family space (--space family: target + ERK-shaped spread)",
    "recipe": "one-shot: uniform global magnitude",
    "lamp": "one-shot: LAMP allocation",
    "erk": "one-shot: ERK allocation",
    "uniform": "one-shot: every layer at the same ratio",
}
COLORS = {"default": "tab:blue", "random": "tab:orange", "gp": "tab:cyan", "nsga2": "tab:olive",
          "screen": "tab:pink", "family": "tab:gray",
          "recipe": "tab:red", "lamp": "tab:green", "erk": "tab:purple", "uniform": "tab:brown"}


def _arms(p: dict) -> list[str]:
    seen = {a for ps in p["per_seed"].values() for a in ps.get("arms", {})}
    return [a for a in WHAT if a in seen]


def plot(p: dict, path: Path) -> None:
    """Per seed: each arm's validation-selected front at TEST accuracy (one-shot arms: all their points)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted(p["per_seed"], key=int)
    fig, axes = plt.subplots(1, max(1, len(seeds)), figsize=(5.2 * max(1, len(seeds)), 4.4), squeeze=False)
    for ax, seed in zip(axes[0], seeds):
        ps = p["per_seed"][seed]
        dense = ps.get("dense", {}).get("test_acc")
        for arm in _arms(p):
            res = ps.get("arms", {}).get(arm)
            if not res:
                continue
            one_shot = arm in sq_metrics.ONE_SHOT
            rows = sorted(res["trials"] if one_shot else res["front"], key=lambda r: r["cost"])
            xs, ys = [r["cost"] for r in rows], [r["test_acc"] for r in rows]
            label = f"{arm} (test HV {res['hv']['test']:.3f})"
            if one_shot:
                ax.plot(xs, ys, "s--", color=COLORS[arm], ms=4, lw=1, label=label)
            else:
                ax.step(xs + [1.0], ys + ys[-1:], where="post", color=COLORS[arm], marker="o", ms=3.5, label=label)
        if dense is not None:
            ax.axhline(dense, color="grey", ls=":", lw=0.8, label=f"dense ({dense:.3f})")
            ref = dense - sq_metrics.REF_DROP
            ax.plot([0.005, sq_metrics.REF_COST, sq_metrics.REF_COST], [ref, ref, 1.0], color="k", lw=0.6, ls="-.",
                    label="HV reference box")
            ax.set_ylim(max(0.0, dense - 0.35), min(1.005, dense + 0.03))
        for b in sq_metrics.SIZE_BUDGETS:
            ax.axvline(b, color="grey", lw=0.5, alpha=0.5)
        ax.set_xscale("log")
        ax.set_xlim(0.01, 1.0)
        ax.grid(alpha=0.3, which="both")
        ax.set_title(f"{p['dataset']} seed {seed}: test accuracy (fronts selected on val)", fontsize=9)
        ax.set_xlabel("size / dense size (log)")
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=6.5, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _ms(t, fmt: str = ".4f") -> str:
    return "—" if t is None else f"{t[0]:{fmt}} ± {t[1]:{fmt}}"


def _status(p: dict) -> str:
    """Which (arm, seed) pairs the JSON holds, and which requested ones it lacks."""
    want = p.get("arms_requested", _arms(p))
    missing = [f"{a}/seed {s}" for s in p.get("seeds", []) for a in want
               if a not in p["per_seed"].get(str(s), {}).get("arms", {})]
    return "all requested (arm, seed) pairs finished" if not missing else "NOT finished: " + ", ".join(missing)


def _arm_table(p: dict) -> list[str]:
    s = p.get("summary", {})
    budgets = sq_metrics.SIZE_BUDGETS
    lines = ["| arm | what | seeds | HV val | test HV of val front | "
             + " | ".join(f"test acc at <= {b:.0%}" for b in budgets) + " | cost: sum of trial cost_s per seed |",
             "|---|---|---|---|---|" + "---|" * len(budgets) + "---|"]
    for arm in _arms(p):
        a = s.get(arm)
        if not a:
            continue
        what = WHAT[arm] + (f", {p['budget']} trials" if arm not in sq_metrics.ONE_SHOT else
                            ", " + "/".join(f"{x:.0%}" for x in p["sparsities"]))
        cells = [_ms(a.get(f"test_acc_at_{b:g}")) for b in budgets]
        lines.append(f"| {arm} | {what} | {a['seeds']} | {_ms(a['hv_val'])} | {_ms(a['hv_test'])} | "
                     + " | ".join(cells) + f" | {_ms(a['cost_s'], '.0f')} s |")
    return lines


def _seed_table(p: dict) -> list[str]:
    arms = _arms(p)
    lines = ["| seed | dense val / test | " + " | ".join(f"{a} HV val / test" for a in arms) + " |",
             "|---|---|" + "---|" * len(arms)]
    for seed in sorted(p["per_seed"], key=int):
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


def _one_shot_table(p: dict) -> list[str]:
    """Each one-shot point: test accuracy (size / dense size), per seed and target sparsity."""
    arms = [a for a in _arms(p) if a in sq_metrics.ONE_SHOT]
    if not arms:
        return []
    lines = ["One-shot points, test accuracy (size / dense size) after the same fine-tune as a trial:", "",
             "| seed | sparsity | " + " | ".join(arms) + " |", "|---|---|" + "---|" * len(arms)]
    for seed in sorted(p["per_seed"], key=int):
        got = p["per_seed"][seed].get("arms", {})
        for i, sp in enumerate(p["sparsities"]):
            cells = []
            for a in arms:
                rows = got.get(a, {}).get("trials", [])
                cells.append(f"{rows[i]['test_acc']:.4f} ({rows[i]['cost']:.3f})" if i < len(rows) else "—")
            lines.append(f"| {seed} | {sp:.0%} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _yn(v) -> str:
    return "not measured" if v is None else ("**met**" if v else "**MISSED**")


def _goal_lines(p: dict) -> list[str]:
    g = p.get("goals", {})
    lines = ["| seed | default / random HV (val, test) | default / LAMP HV (val, test) | one-shot points dominated on test "
             "(front at <= size) | drop at <= 5% (goal <= 1 pt) | drop at <= 2% (goal <= 3 pt) |",
             "|---|---|---|---|---|---|"]
    for seed, s in sorted(g.get("per_seed", {}).items(), key=lambda kv: int(kv[0])):
        def ratio(key, s=s):
            r = s.get(key)
            return "—" if r is None else f"{r['val']:.3f}x, {r['test']:.3f}x"

        def drop(key, s=s):
            d = s[key]
            return "no point that small" if d["drop"] is None else f"{100 * d['drop']:+.2f} pt"

        dom = ", ".join(f"{a} {c}" for a, c in s["dominated_test"].items()) or "—"
        lines.append(f"| {seed} | {ratio('hv_ratio_to_random')} | {ratio('hv_ratio_to_lamp')} | {dom} | "
                     f"{drop('drop_at_0.05')} | {drop('drop_at_0.02')} |")

    def both(v):
        return "not measured" if v is None else f"val {_yn(v['val'])}, test {_yn(v['test'])}"

    same = [seed for seed, ps in sorted(p["per_seed"].items(), key=lambda kv: int(kv[0]))
            if {"default", "random"} <= set(ps.get("arms", {}))
            and _front_key(ps["arms"]["default"]) == _front_key(ps["arms"]["random"])]
    if same:
        lines += ["", f"In seed {', '.join(same)} the default and random searches' validation fronts are the same trials "
                  "(same size, same accuracies): configurations both searches drew identically (same seed); no other "
                  "trial of either reached the front, so HV cannot separate them there."]
    lines += ["", f"Goals (every seed): default HV >= 1.05x random: {both(g.get('hv_ge_1.05x_random_every_seed'))}; "
              f"default HV above LAMP: {both(g.get('hv_above_lamp_every_seed'))}; one-shot points dominated on test: "
              f"**{g.get('dominated_test', '—')}**; within 1 pt of dense at <= 5% of dense bytes: "
              f"{_yn(g.get('within_1pt_at_5pct_every_seed'))}; within 3 pt at <= 2%: "
              f"{_yn(g.get('within_3pt_at_2pct_every_seed'))}. Drops are dense test accuracy minus the test accuracy "
              "of the default search's trial with the best validation accuracy at that size."]
    return lines


def _front_key(arm: dict) -> list:
    return sorted((r["size_bytes"], r["val_acc"], r["test_acc"]) for r in arm["front"])


def markdown(p: dict, png: Path) -> str:
    sizes = next((ps for ps in p["per_seed"].values() if "n_val" in ps), {})
    split = f"{sizes.get('n_train', '?')}/{sizes.get('n_val', '?')}/{sizes.get('n_test', '?')}"
    lines = [
        f"## Search quality: {p['dataset']}", "",
        f"Command: `{p['command']}`  ",
        f"Search flags: `{' '.join(p['search_flags'])}` (split train/val/test {split}); budget {p['budget']} per search "
        f"arm, 2 concurrent trials of 1 CPU each; one-shot arms at "
        + "/".join(f"{x:.0%}" for x in p["sparsities"]) + " sparsity, same fine-tune as a trial. "
        f"Seeds {p.get('seeds')}: {_status(p)}.  ",
        common.machine_line(p["machine"]) + " A shared 2-core VM (other engineers' tests ran meanwhile): "
        "wall and cost_s figures are inflated by their load.", "",
        f"Hypervolume: reference point cost ratio {sq_metrics.REF_COST} and accuracy = dense accuracy "
        f"(same split, same seed) - {100 * sq_metrics.REF_DROP:.0f} pt, normalized by that box "
        f"({sq_metrics.REF_COST} x {sq_metrics.REF_DROP}), so 1.0 = dense accuracy at zero size; cost = size_bytes / "
        "dense size_bytes. `HV val` covers every trial on validation accuracy (what the search sees); `test HV` "
        "re-scores the validation-selected front on test accuracy. `test acc at <= x%`: test accuracy of the trial "
        "with the best validation accuracy at <= x% of dense bytes (— where an arm has no trial that small in "
        "some seed). Mean ± std over seeds.", "",
        *_arm_table(p), "", *_seed_table(p), "", *_screen_lines(p), *_one_shot_table(p), *_goal_lines(p), "",
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


def summary_row(p: dict) -> tuple[str, str]:
    s, g = p.get("summary", {}), p.get("goals", {})
    parts = [f"{arm} {s[arm]['hv_test'][0]:.3f}" for arm in _arms(p) if arm in s]
    fig = f"test HV (ref cost {sq_metrics.REF_COST}, dense - {100 * sq_metrics.REF_DROP:.0f} pt): " + ", ".join(parts)
    r, lamp = g.get("hv_ge_1.05x_random_every_seed"), g.get("hv_above_lamp_every_seed")
    goal = (f">= 1.05x random: {'—' if r is None else ('met' if r['test'] else 'MISSED')}; above LAMP: "
            f"{'—' if lamp is None else ('met' if lamp['test'] else 'MISSED')}; dominated {g.get('dominated_test', '—')}; "
            f"<=1 pt at 5%: {_yn(g.get('within_1pt_at_5pct_every_seed')).strip('*')}; "
            f"<=3 pt at 2%: {_yn(g.get('within_3pt_at_2pct_every_seed')).strip('*')}")
    return fig, goal
