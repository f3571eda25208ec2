"""Is the search worth running? Hypervolume after a budget of B trials for
  (a) the default search: TPE (multi-objective), the article's recipe enqueued first;
  (b) random search over the same space and budget (--sampler random --enqueue-recipe false);
  (c) the article's recipe alone: global magnitude at uniform 20/50/80/90/95% with the same
      fine-tuning, run with trainables.trial.run_trial on the same data and baseline;
over several seeds (mean ± std), plus, per recipe point, whether the default search's front
(selected on validation accuracy) dominates it on validation AND on test accuracy.

Hypervolume reference point (results/pareto.py HV_REF): cost ratio 1.0, accuracy 0.0, where
cost = size_bytes / dense size_bytes. Accuracy is validation accuracy (what the search sees);
"test HV" re-scores the validation-selected front with test accuracy.

    python bench/search_quality.py                       # digits, budget 50, seeds 0,1,2 (~10 min)
    python bench/search_quality.py --budget 10           # quick check (~3 min)
    python bench/search_quality.py --dataset cifar10 --budget 20   # CIFAR-10 subset recipe (~45 min)
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, markdown, searches  # noqa: E402

ARMS = ("default", "random", "recipe")


def _points(trials, dense_size, acc_key="val_acc"):
    from results.pareto import Point

    return [Point(t["run_id"], t[acc_key], t["size_bytes"] / dense_size, t["method"]) for t in trials]


def _trial_dicts(record) -> list[dict]:
    out = []
    for t in record.finished():
        m = t.metrics
        out.append({"run_id": t.run_id, "method": t.method, "val_acc": m["val_acc"], "test_acc": m["test_acc"],
                    "size_bytes": m["size_bytes"], "cost": m["size_bytes"] / record.dense_size,
                    "magnitude_scope": t.params.get("magnitude_scope"),
                    "global_sparsity": t.params.get("global_sparsity"), "cost_s": m.get("cost_s")})
    return out


def _front_rows(trials, dense_size):
    """Validation-selected front, each point with its test accuracy too."""
    from results.pareto import front

    by_id = {t["run_id"]: t for t in trials}
    return [by_id[p.key] for p in front(_points(trials, dense_size))]


def _hv(rows, acc_key):
    from results.pareto import Point, hypervolume

    return hypervolume([Point(r["run_id"], r[acc_key], r["cost"]) for r in rows])


def _enqueued(argv, home) -> list[dict]:
    """What the product enqueues before its sampler takes over (for the report)."""
    from search.config import load_config

    from search.seeding import initial_points

    cfg = load_config([*argv, "--home", str(home)])
    return initial_points(cfg)


def _run_recipe(argv, home, threads: int) -> tuple[list[dict], float, str, float, dict]:
    """The article's recipe, same data, baseline and fine-tuning as the searches."""
    from search.space import RECIPE_SPARSITIES, recipe_points
    from search.config import replace
    from trainables import compress
    from trainables.trial import run_trial
    from trainables.trial_config import TrialConfig

    cfg, data, baseline = searches.load_data_and_baseline(argv, home)
    constants = searches.trial_constants(cfg, data, baseline)
    # The product's own recipe points (same fine-tune lr), all five of them.
    points = recipe_points(replace(cfg, budget=4 * len(RECIPE_SPARSITIES), enqueue_recipe=True))
    dense_size = compress.size_bytes(compress.encode(baseline.state, {}))
    rows = []
    t0 = time.perf_counter()
    with common.torch_threads(threads):
        for p in sorted(points, key=lambda p: p["global_sparsity"]):
            config = {**constants, "method": "magnitude", "magnitude_scope": "global", **p}
            out = run_trial(TrialConfig.from_flat(config), data, baseline)
            m = out.metrics
            rows.append({"run_id": f"recipe-{p['global_sparsity']:.2f}", "method": "magnitude",
                         "val_acc": m["val_acc"], "test_acc": m["test_acc"], "size_bytes": m["size_bytes"],
                         "cost": m["size_bytes"] / dense_size, "magnitude_scope": "global",
                         "global_sparsity": p["global_sparsity"], "finetune_lr": p["finetune_lr"],
                         "cost_s": m["cost_s"]})
    sizes = {"n_val": len(data.val), "n_test": len(data.test)}
    return rows, dense_size, baseline.key, time.perf_counter() - t0, sizes


def _domination(recipe_rows, default_front):
    """Per recipe point: is there a default-front point (chosen on val) that costs no more and
    is at least as accurate, on val; on test; and one point doing both?"""
    out = []
    for r in recipe_rows:
        cheaper = [p for p in default_front if p["cost"] <= r["cost"] + 1e-12]
        val_ok = [p for p in cheaper if p["val_acc"] >= r["val_acc"]]
        test_ok = [p for p in cheaper if p["test_acc"] >= r["test_acc"]]
        both = [p for p in cheaper if p["val_acc"] >= r["val_acc"] and p["test_acc"] >= r["test_acc"]]
        strict_val = [p for p in val_ok if p["val_acc"] > r["val_acc"] or p["cost"] < r["cost"] - 1e-12]
        strict_test = [p for p in test_ok if p["test_acc"] > r["test_acc"] or p["cost"] < r["cost"] - 1e-12]
        out.append({
            "global_sparsity": r["global_sparsity"], "cost": r["cost"], "val_acc": r["val_acc"],
            "test_acc": r["test_acc"],
            "dominated_val": bool(val_ok), "strictly_val": bool(strict_val),
            "dominated_test": bool(test_ok), "strictly_test": bool(strict_test),
            "dominated_both_one_point": bool(both),
            # Best accuracy the default front reaches at no more cost (margin over the recipe).
            "val_margin": max((p["val_acc"] for p in cheaper), default=math.nan) - r["val_acc"],
            "test_margin": max((p["test_acc"] for p in cheaper), default=math.nan) - r["test_acc"],
            "by": [p["run_id"] for p in both][:3],
        })
    return out


def _plot(per_seed, dataset, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted(per_seed)
    fig, axes = plt.subplots(2, len(seeds), figsize=(4.6 * len(seeds), 7.5), squeeze=False)
    colors = {"default": "tab:blue", "random": "tab:orange", "recipe": "tab:red"}
    for j, seed in enumerate(seeds):
        s = per_seed[seed]
        for i, acc in enumerate(("val_acc", "test_acc")):
            ax = axes[i][j]
            lo = []
            for arm in ("default", "random"):
                trials, fr = s["trials"][arm], s["fronts"][arm]
                ax.scatter([t["cost"] for t in trials], [t[acc] for t in trials], s=9, alpha=0.25, color=colors[arm])
                xs, ys = [p["cost"] for p in fr], [p[acc] for p in fr]
                hvk = "val" if acc == "val_acc" else "test_of_val_front"
                ax.step(xs + [1.0], ys + ys[-1:], where="post", color=colors[arm], marker="o", ms=4,
                        label=f"{arm} front (HV {s['hv'][arm][hvk]:.3f})")
                lo += ys
            rec = s["trials"]["recipe"]
            ax.plot([r["cost"] for r in rec], [r[acc] for r in rec], "s--", color=colors["recipe"], ms=6,
                    label=f"recipe 20-95% (HV {s['hv']['recipe'][hvk]:.3f})")
            lo += [r[acc] for r in rec]
            ax.axhline(s["dense"][acc], color="grey", ls=":", lw=0.8, label=f"dense ({s['dense'][acc]:.3f})")
            ymin = max(0.0, min(lo) - 0.03)
            ax.set_ylim(ymin, min(1.005, max(lo + [s["dense"][acc]]) + 0.01))
            ax.set_xlim(0, 1.0)
            ax.grid(alpha=0.3)
            ax.set_title(f"{dataset} seed {seed}: {'validation' if acc == 'val_acc' else 'test'}", fontsize=9)
            ax.set_xlabel("size / dense size")
            ax.set_ylabel(acc.replace("_", " "))
            ax.legend(fontsize=6.5, loc="lower right")
    fig.suptitle(f"{dataset}: default vs random vs recipe\n(test row: val-selected fronts at test accuracy)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=("digits", "cifar10"), default="digits")
    ap.add_argument("--budget", type=int, default=50, help="trials per search (default 50)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    ap.add_argument("--home", type=Path, default=common.DEFAULT_HOME)
    ap.add_argument("--extra", default="", help="extra search flags, e.g. '--finetune-epochs 2'")
    ap.add_argument("--render-only", action="store_true",
                    help="re-draw the plot and the BENCHMARKS.md section from bench/results/search_quality_<dataset>.json")
    args = ap.parse_args(argv)
    if args.render_only:
        return _render_only(args.dataset)
    seeds = [int(s) for s in args.seeds.split(",")]
    base = list(common.DIGITS if args.dataset == "digits" else common.CIFAR_QUICK) + args.extra.split()
    info = common.machine_info()
    run_stamp = common.stamp()
    home = searches.run_home(args.home, f"search_quality-{args.dataset}-{run_stamp}")
    searches.warm_mlflow(home)
    per_seed, t_start = {}, time.perf_counter()
    with searches.ray_cluster():
        for seed in seeds:
            per_seed[seed] = _run_seed(args.dataset, [*base, "--seed", str(seed)], args.budget, home,
                                       f"s{seed}-{run_stamp}")
            hv = per_seed[seed]["hv"]
            print(f"seed {seed}: HV default {hv['default']['val']:.4f} random {hv['random']['val']:.4f} "
                  f"recipe {hv['recipe']['val']:.4f}", flush=True)
    total_s = time.perf_counter() - t_start
    summary, goals = _summarize(per_seed, seeds)
    png = common.RESULTS / f"search_quality_{args.dataset}.png"
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    _plot(per_seed, args.dataset, png)
    payload = {"benchmark": "search_quality", "command": common.command("search_quality.py", argv), "machine": info,
               "dataset": args.dataset, "search_flags": base, "budget": args.budget, "seeds": seeds,
               "hv_reference": {"cost_ratio": 1.0, "accuracy": 0.0,
                                "cost": "size_bytes / dense size_bytes", "accuracy_metric": "val_acc"},
               "summary": summary, "goals": goals, "total_s": total_s, "home": str(home), "per_seed": per_seed}
    path = common.write_json(f"search_quality_{args.dataset}", payload)
    markdown.update_section(f"search_quality_{args.dataset}", _markdown(payload, png))
    print(f"wrote {path} and {png}; total {total_s:.0f}s")
    print(goals)
    return 0


def _run_seed(dataset: str, flags: list[str], budget: int, home: Path, tag: str) -> dict:
    """The default and random searches and the recipe, on one seed (one shared baseline)."""
    recs, enqueued = {}, {}
    for arm, extra in (("default", []), ("random", ["--sampler", "random", "--enqueue-recipe", "false"])):
        t0 = time.perf_counter()
        argv_arm = [*flags, "--budget", str(budget), *extra]
        enqueued[arm] = _enqueued(argv_arm, home)
        recs[arm] = searches.run_search(argv_arm, home, f"sq-{dataset}-{arm}-{tag}")
        print(f"{tag} {arm}: {len(recs[arm].finished())}/{budget} trials finished in "
              f"{time.perf_counter() - t0:.0f}s", flush=True)
    recipe, dense_size, key, recipe_s, sizes = _run_recipe(flags, home, threads=1)
    for arm, rec in recs.items():
        if rec.parent_params.get("baseline_key") != key or rec.dense_size != dense_size:
            raise RuntimeError(f"{arm} search used another baseline than the recipe run")
    trials = {arm: _trial_dicts(rec) for arm, rec in recs.items()}
    trials["recipe"] = recipe
    fronts = {arm: _front_rows(rows, dense_size) for arm, rows in trials.items()}
    hv = {arm: {"val": _hv(trials[arm], "val_acc"), "test_of_val_front": _hv(fronts[arm], "test_acc")}
          for arm in ARMS}
    return {
        "dense": {"val_acc": recs["default"].parent_metrics["baseline_val_acc"],
                  "test_acc": recs["default"].parent_metrics["baseline_test_acc"], "size_bytes": dense_size},
        "baseline_key": key, "hv": hv, "enqueued_first": enqueued, **sizes,
        "wall_s": {"default": recs["default"].wall_s, "random": recs["random"].wall_s, "recipe": recipe_s},
        "trials_finished": {a: len(trials[a]) for a in ARMS},
        "trials_failed": {a: sum(t.status == "FAILED" for t in recs[a].trials) for a in recs},
        "domination": _domination(recipe, fronts["default"]),
        "recipe_in_default_search_reproduced": _recipe_reproduced(recipe, trials["default"]),
        "fronts": fronts, "trials": trials,
    }


def _recipe_reproduced(recipe: list[dict], default_trials: list[dict]) -> list[dict]:
    """The default search ran the same recipe configs first: they must give the same numbers."""
    same = []
    for r in recipe:
        twin = [t for t in default_trials if t["magnitude_scope"] == "global" and t["global_sparsity"] is not None
                and abs(float(t["global_sparsity"]) - r["global_sparsity"]) < 1e-12]
        if twin:
            same.append({"global_sparsity": r["global_sparsity"], "val_equal": twin[0]["val_acc"] == r["val_acc"],
                         "test_equal": twin[0]["test_acc"] == r["test_acc"],
                         "size_equal": twin[0]["size_bytes"] == r["size_bytes"]})
    return same


def _summarize(per_seed: dict, seeds: list[int]) -> tuple[dict, dict]:
    summary = {arm: {"hv_val": common.mean_std([per_seed[s]["hv"][arm]["val"] for s in seeds]),
                     "hv_test_of_val_front": common.mean_std([per_seed[s]["hv"][arm]["test_of_val_front"]
                                                              for s in seeds])} for arm in ARMS}
    default_beats_random = sum(per_seed[s]["hv"]["default"]["val"] > per_seed[s]["hv"]["random"]["val"] for s in seeds)
    dom = [d for s in seeds for d in per_seed[s]["domination"]]

    def count(key: str) -> str:
        return f"{sum(d[key] for d in dom)}/{len(dom)}"

    goals = {
        "default_hv_gt_random_mean": summary["default"]["hv_val"][0] > summary["random"]["hv_val"][0],
        "default_hv_gt_random_seeds": f"{default_beats_random}/{len(seeds)}",
        "recipe_points_dominated_val": count("dominated_val"),
        "recipe_points_dominated_test": count("dominated_test"),
        "recipe_points_dominated_both_by_one_point": count("dominated_both_one_point"),
        "recipe_points_strictly_dominated_val": count("strictly_val"),
        "recipe_points_strictly_dominated_test": count("strictly_test"),
    }
    return summary, goals


def _render_only(dataset: str) -> int:
    import json

    path = common.RESULTS / f"search_quality_{dataset}.json"
    p = json.loads(path.read_text())
    p["per_seed"] = {int(k): v for k, v in p["per_seed"].items()}
    for seed, ps in p["per_seed"].items():
        if "n_test" not in ps:  # results from before the field existed: the split sizes of that data
            _, data, _ = searches.load_data_and_baseline([*p["search_flags"], "--seed", str(seed)], Path(p["home"]))
            ps["n_val"], ps["n_test"] = len(data.val), len(data.test)
        if "enqueued_first" not in ps:  # results from before the field existed: recompute (deterministic)
            flags = [*p["search_flags"], "--seed", str(seed), "--budget", str(p["budget"])]
            ps["enqueued_first"] = {"default": _enqueued(flags, Path(p["home"])),
                                    "random": _enqueued([*flags, "--sampler", "random", "--enqueue-recipe", "false"],
                                                        Path(p["home"]))}
    png = common.RESULTS / f"search_quality_{dataset}.png"
    _plot(p["per_seed"], dataset, png)
    common.write_json(f"search_quality_{dataset}", p)
    markdown.update_section(f"search_quality_{dataset}", _markdown(p, png))
    print(f"re-rendered {path}, {png} and BENCHMARKS.md")
    return 0


def _markdown(p, png: Path) -> str:
    seeds, s = p["seeds"], p["summary"]
    lines = [
        f"## Search quality: {p['dataset']}",
        "",
        f"Command: `{p['command']}`  ",
        f"Search flags: `{' '.join(p['search_flags'])}`, budget {p['budget']} per search, seeds {seeds}; "
        f"2 concurrent trials, 1 CPU each. Total {p['total_s'] / 60:.1f} min.  ",
        common.machine_line(p["machine"]),
        "",
        "Hypervolume reference point: cost ratio 1.0, accuracy 0.0 (results/pareto.py `HV_REF`), "
        "cost = size_bytes / dense size_bytes, accuracy = validation accuracy. "
        "\"Test HV\" re-scores the validation-selected front with test accuracy. Mean ± std over seeds.",
        "",
        "| arm | what | HV (val) | test HV of val front |",
        "|---|---|---|---|",
        f"| default | TPE; enqueued first: {_describe(p, 'default')}; {p['budget']} trials | {_ms(s['default']['hv_val'])} | "
        f"{_ms(s['default']['hv_test_of_val_front'])} |",
        f"| random | random sampler; enqueued first: {_describe(p, 'random')}; {p['budget']} trials | {_ms(s['random']['hv_val'])} | "
        f"{_ms(s['random']['hv_test_of_val_front'])} |",
        f"| recipe | global magnitude 20/50/80/90/95%, same fine-tune (5 trials) | {_ms(s['recipe']['hv_val'])} | "
        f"{_ms(s['recipe']['hv_test_of_val_front'])} |",
        "",
        "| seed | dense val / test | HV default | HV random | HV recipe | default > random |",
        "|---|---|---|---|---|---|",
    ]
    for seed in seeds:
        ps = p["per_seed"][seed]
        hv = ps["hv"]
        lines.append(f"| {seed} | {ps['dense']['val_acc']:.4f} / {ps['dense']['test_acc']:.4f} | "
                     f"{hv['default']['val']:.4f} | {hv['random']['val']:.4f} | {hv['recipe']['val']:.4f} | "
                     f"{'yes' if hv['default']['val'] > hv['random']['val'] else 'NO'} |")
    lines += ["", "Per recipe point: the default search's front (selected on validation) at no more size. "
              "`val`/`test` = dominated (>= accuracy at <= size) on that split; `both` = one front point does both; "
              "margin = best front accuracy at <= size minus the recipe's. For scale, one standard error of an "
              "accuracy near the dense model's on these splits is "
              + ", ".join(f"seed {seed}: val {_se(p['per_seed'][seed], 'val')}, test {_se(p['per_seed'][seed], 'test')}"
                          for seed in seeds) + " (binomial, sqrt(p(1-p)/n)).", "",
              "| seed | recipe sparsity | size ratio | recipe val / test | val | test | both | val margin | test margin |",
              "|---|---|---|---|---|---|---|---|---|"]
    for seed in seeds:
        for d in p["per_seed"][seed]["domination"]:
            yn = lambda b, strict=None: ("yes" + (" (strict)" if strict else "")) if b else "NO"  # noqa: E731
            lines.append(f"| {seed} | {d['global_sparsity']:.0%} | {d['cost']:.3f} | {d['val_acc']:.4f} / "
                         f"{d['test_acc']:.4f} | {yn(d['dominated_val'], d['strictly_val'])} | "
                         f"{yn(d['dominated_test'], d['strictly_test'])} | {yn(d['dominated_both_one_point'])} | "
                         f"{d['val_margin']:+.4f} | {d['test_margin']:+.4f} |")
    g = p["goals"]
    lines += ["", f"Goals: default HV > random HV on the mean: **{'met' if g['default_hv_gt_random_mean'] else 'MISSED'}** "
              f"({g['default_hv_gt_random_seeds']} seeds). Recipe points dominated on val: "
              f"**{g['recipe_points_dominated_val']}**, on test: **{g['recipe_points_dominated_test']}**, "
              f"both by one point: {g['recipe_points_dominated_both_by_one_point']} "
              f"(strictly: val {g['recipe_points_strictly_dominated_val']}, test {g['recipe_points_strictly_dominated_test']}).",
              "", f"![fronts on {p['dataset']}](bench/results/{png.name})"]
    return "\n".join(lines)


def _describe(p, arm) -> str:
    pts = p["per_seed"][p["seeds"][0]]["enqueued_first"][arm]
    recipe = [q for q in pts if "global_sparsity" in q]
    per_method = [q for q in pts if set(q) == {"method"}]
    parts = []
    if per_method:
        parts.append(f"one trial per method ({len(per_method)}, rest of each sampled)")
    if recipe:
        parts.append("the recipe (" + "/".join(f"{q['global_sparsity']:.0%}" for q in recipe) + ")")
    other = len(pts) - len(recipe) - len(per_method)
    if other:
        parts.append(f"{other} other points")
    return " + ".join(parts) or "nothing"


def _se(ps, split: str) -> str:
    n = ps.get(f"n_{split}")
    if not n:
        return "?"
    acc = ps["dense"][f"{split}_acc"]
    return f"{math.sqrt(max(acc * (1 - acc), 1 / n) / n):.4f} (n={n}, 1 image = {1 / n:.4f})"


def _ms(t) -> str:
    return f"{t[0]:.4f} ± {t[1]:.4f}"


if __name__ == "__main__":
    sys.exit(main())


def markdown_section(p: dict, name: str) -> str:
    """This benchmark's BENCHMARKS.md section, from its JSON (bench/render.py)."""
    p["per_seed"] = {int(k): v for k, v in p["per_seed"].items()}
    return _markdown(p, common.RESULTS / f"{name}.png")


def summary_row(p: dict) -> tuple[str, str]:
    """(headline figure, goal status) for the summary table."""
    s, g = p["summary"], p["goals"]
    fig = (f"HV default {s['default']['hv_val'][0]:.4f} ± {s['default']['hv_val'][1]:.4f}, random "
           f"{s['random']['hv_val'][0]:.4f} ± {s['random']['hv_val'][1]:.4f}, recipe "
           f"{s['recipe']['hv_val'][0]:.4f} ± {s['recipe']['hv_val'][1]:.4f} (budget {p['budget']}, "
           f"{len(p['seeds'])} seeds); recipe points dominated: val {g['recipe_points_dominated_val']}, "
           f"test {g['recipe_points_dominated_test']}")

    def all_of(count: str) -> bool:
        done, total = count.split("/")
        return done == total

    dominance = all_of(g["recipe_points_dominated_val"]) and all_of(g["recipe_points_dominated_test"])
    goal = (f"HV > random: {'met' if g['default_hv_gt_random_mean'] else 'MISSED'} "
            f"({g['default_hv_gt_random_seeds']} seeds); dominance: {'met' if dominance else 'MISSED'}")
    return fig, goal
