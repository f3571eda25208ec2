"""Is the search worth its compute? Per arm, on the same data and dense baseline per seed:
  default   the product's search: TPE (multi-objective), the article's recipe enqueued first;
  random    random search over the same space and budget (--sampler random --enqueue-recipe false);
  gp, nsga2 the same search with Optuna's GPSampler / NSGA-II (optional: --arms ...,gp,nsga2);
  screen    the default search after cheap screening (--screen 100: a quarter of the budget
            fine-tunes the best of 100 configurations scored without fine-tune; optional);
  family    the default search in the compact family space (--space family: a target and an
            ERK-shaped spread instead of one ratio per layer; optional);
  recipe    uniform global magnitude (magnitude_scope global) at each target sparsity;
  lamp      LAMP allocation (Lee et al. 2021) at each target sparsity;
  erk       ERK allocation (Evci et al. 2020) at each target sparsity;
  uniform   every prunable layer at the same ratio (magnitude_scope layer);
the one-shot arms (recipe, lamp, erk, uniform) at 20/50/80/90/95/98% with the same fine-tune as
a trial (trainables.trial.run_trial). Figures (bench/sq_metrics.py): hypervolume with reference
point cost ratio 0.25 and accuracy = dense - 15 pt, normalized so 1.0 = dense accuracy at zero
size (validation HV of all trials; test HV of the validation-selected front); the test accuracy
at <= 10/5/2% of dense bytes; the cost (sum of trial cost_s, plus the screening's wall time);
the screening's rank correlation; mean ± std over seeds.

Resumable: bench/results/search_quality_<dataset>.json records the measured code's commit, the
settings, the dense accuracy and each finished (arm, seed); a rerun with the same code
(`MEASURED_CODE`) and settings skips the pairs already there, so a long run can be finished later.

    python bench/search_quality.py                                  # digits, budget 50, seeds 0,1
    python bench/search_quality.py --budget 8 --seeds 0             # quick check
    python bench/search_quality.py --dataset cifar10 --arms default,random,screen,lamp,recipe,erk,uniform
                                                                    # 40k images, budget 16, seeds 0,1 (~100 min)
    python bench/search_quality.py --render-only --dataset cifar10  # re-draw from the JSON
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, markdown, searches, sq_metrics, sq_render  # noqa: E402

SEARCH_ARMS = {"default": [], "random": ["--sampler", "random", "--enqueue-recipe", "false"],
               "gp": ["--sampler", "gp"], "nsga2": ["--sampler", "nsga2"], "screen": ["--screen", "100"],
               "family": ["--space", "family"]}
# What decides the figures: the product and this benchmark's own measuring code.
MEASURED_CODE = ("pruners", "trainables", "search", "results", "mlflow_config", "pyproject.toml",
                 "bench/common.py", "bench/searches.py", "bench/search_quality.py", "bench/sq_metrics.py")
ONE_SHOT_SCOPES = {"recipe": "global", "lamp": "lamp", "erk": "erk", "uniform": "layer"}
ARMS = (*SEARCH_ARMS, *ONE_SHOT_SCOPES)
DEFAULT_ARMS = ("default", "random", "recipe", "lamp", "erk", "uniform")
SPARSITIES = (0.2, 0.5, 0.8, 0.9, 0.95, 0.98)
# The discriminating CIFAR-10 setting: the product's default split (40k training images, val and
# test 5k each) and its default strong recipe (15 epochs, augmentation + one-cycle: the baseline
# bench/baseline_recipe.py trains and caches), so pruning at high compression costs accuracy.
# Each trial fine-tunes on 1/8 of an epoch (5k images): what 2 shared cores allow. Lottery
# retrains with that fine-tune (`--lottery-retrain finetune`): the paper's full retraining is
# 15 epochs of 40k images per round, hours per trial here.
CIFAR_DISCRIMINATING = ("--dataset", "cifar10", "--data-dir", str(common.CIFAR_DIR), "--finetune-epochs", "0.125",
                        "--lottery-retrain", "finetune")
SETTINGS = {"digits": (common.DIGITS, 50), "cifar10": (CIFAR_DISCRIMINATING, 16)}


def _parse(argv):
    ap = common.BenchParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=tuple(SETTINGS), default="digits")
    ap.add_argument("--budget", type=int, default=None, help="trials per search arm (default: digits 50, cifar10 16)")
    ap.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    ap.add_argument("--arms", default=",".join(DEFAULT_ARMS), help=f"comma-separated subset of {', '.join(ARMS)} "
                    f"(default {','.join(DEFAULT_ARMS)})")
    ap.add_argument("--home", type=Path, default=common.DEFAULT_HOME)
    ap.add_argument("--extra", default="", help="extra search flags, e.g. '--finetune-epochs 0.5' (last one wins)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the one-shot arms (default 2)")
    ap.add_argument("--render-only", action="store_true",
                    help="re-draw the plot and the BENCHMARKS.md section from bench/results/search_quality_<dataset>.json")
    args = ap.parse_args(argv)
    unknown = [a for a in args.arms.split(",") if a not in ARMS]
    if unknown:
        ap.error(f"--arms: {','.join(unknown)!r} is not accepted; expected a comma-separated subset of {', '.join(ARMS)}")
    try:
        args.seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        ap.error(f"--seeds: {args.seeds!r} is not accepted; expected comma-separated integers, e.g. 0,1")
    if args.budget is not None and args.budget < 1:
        ap.error(f"--budget: {args.budget} is not accepted; expected an integer >= 1")
    if args.threads < 1:
        ap.error(f"--threads: {args.threads} is not accepted; expected an integer >= 1")
    args.arms = args.arms.split(",")
    flags, budget = SETTINGS[args.dataset]
    args.flags, args.budget = [*flags, *args.extra.split()], args.budget or budget
    return args


def main(argv=None) -> int:
    args = _parse(argv)
    name = f"search_quality_{args.dataset}"
    if args.render_only:
        return _render(name)
    _check_flags(args.flags)
    settings = {"dataset": args.dataset, "search_flags": args.flags, "budget": args.budget,
                "sparsities": list(SPARSITIES)}
    payload = _previous(name, settings) or {**settings, "benchmark": "search_quality", "per_seed": {}}
    payload.update(command=common.command("search_quality.py", argv), machine=common.machine_info(),
                   code_commit=common.code_commit(MEASURED_CODE),
                   hv_reference=_reference_text(), arms_requested=args.arms, seeds=args.seeds)
    home = searches.run_home(args.home, f"search_quality-{args.dataset}-{common.stamp()}")
    searches.warm_mlflow(home)
    with searches.ray_cluster():
        for seed in args.seeds:
            _run_seed(args, payload, seed, home, name)
    _render(name)
    print(json.dumps(payload["goals"], indent=1))
    return 0


def _check_flags(flags) -> None:
    """Bad --extra flags: the product's own one-line message, exit 2, before anything runs."""
    from search.config import ConfigError, load_config

    try:
        load_config(list(flags))
    except ConfigError as exc:
        print(f"error: --extra: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _previous(name: str, settings: dict) -> dict:
    """The JSON of an earlier run by the same code with the same settings, else nothing."""
    path = common.RESULTS / f"{name}.json"
    if not path.exists():
        return {}
    p = json.loads(path.read_text())
    same = all(p.get(k) == v for k, v in settings.items())
    code = common.code_commit(MEASURED_CODE)
    if p.get("code_commit") != code or "+changes" in code or not same:
        print(f"{path.name}: other code or other settings; starting afresh", flush=True)
        return {}
    return p


def _reference_text() -> dict:
    return {"cost_ratio": sq_metrics.REF_COST, "accuracy": f"dense accuracy (same split) - {sq_metrics.REF_DROP}",
            "normalized_by": f"{sq_metrics.REF_COST} x {sq_metrics.REF_DROP} (1.0 = dense accuracy at zero size)",
            "cost": "size_bytes / dense size_bytes",
            "val": "all trials on validation accuracy", "test": "validation-selected front on test accuracy"}


def _run_seed(args, payload: dict, seed: int, home: Path, name: str) -> None:
    """Every requested arm on one seed (one shared baseline), each saved as soon as it finishes."""
    ps = payload["per_seed"].setdefault(str(seed), {"arms": {}})
    todo = [a for a in args.arms if a not in ps["arms"]]
    for arm in args.arms:
        if arm not in todo:
            print(f"seed {seed} {arm}: already in {name}.json (code {payload['code_commit']}), skipped")
    if not todo:
        return
    flags = [*args.flags, "--seed", str(seed)]
    with common.torch_threads(args.threads):
        ctx = _seed_context(flags, home)
    ps.update(dense=ctx["dense"], baseline_key=ctx["key"], **ctx["sizes"])
    for arm in todo:
        t0 = time.perf_counter()
        load = list(__import__("os").getloadavg())
        if arm in SEARCH_ARMS:
            result = _run_search_arm(arm, flags, args.budget, home, ctx, f"sq-{args.dataset}-{arm}-s{seed}")
        else:
            result = _run_one_shot(arm, ctx, args.threads)
        result.update(date=common.machine_info()["date"], load_avg_at_start=[round(x, 2) for x in load])
        ps["arms"][arm] = result
        _save(payload, name)
        hv = result["hv"]
        print(f"seed {seed} {arm}: {result['n_trials']} trials, HV val {hv['val']:.4f} test {hv['test']:.4f}, "
              f"cost {result['cost_s']:.0f}s, wall {time.perf_counter() - t0:.0f}s", flush=True)


def _save(payload: dict, name: str) -> None:
    per_seed = payload["per_seed"]
    payload["summary"] = sq_metrics.summarize(per_seed, ARMS)
    payload["goals"] = sq_metrics.goals(per_seed)
    common.write_json(name, payload)


def _seed_context(flags: list[str], home: Path) -> dict:
    """Data, baseline and the constants every trial of this seed shares (trains the baseline once)."""
    from trainables import compress

    cfg, data, baseline = searches.load_data_and_baseline(flags, home, verbose=True)
    dense = {"val_acc": baseline.metrics["val_acc"], "test_acc": baseline.metrics["test_acc"],
             "size_bytes": compress.size_bytes(compress.encode(baseline.state, {}))}
    return {"cfg": cfg, "data": data, "baseline": baseline, "key": baseline.key, "dense": dense,
            "constants": searches.trial_constants(cfg, data, baseline),
            "sizes": {"n_train": len(data.train), "n_val": len(data.val), "n_test": len(data.test)}}


def _run_search_arm(arm: str, flags: list[str], budget: int, home: Path, ctx: dict, run_name: str) -> dict:
    """One search through the product's own entry, read back from MLflow."""
    argv = [*flags, "--budget", str(budget), *SEARCH_ARMS[arm]]
    rec = searches.run_search(argv, home, run_name)
    if rec.parent_params.get("baseline_key") != ctx["key"] or rec.dense_size != ctx["dense"]["size_bytes"]:
        raise RuntimeError(f"{arm} search used another baseline than the one-shot arms")
    dense_size = ctx["dense"]["size_bytes"]
    rows = []
    for t in rec.finished():
        m = t.metrics
        rows.append({"run_id": t.run_id, "method": t.method, "val_acc": m["val_acc"], "test_acc": m["test_acc"],
                     "size_bytes": m["size_bytes"], "cost": m["size_bytes"] / dense_size,
                     "magnitude_scope": t.params.get("magnitude_scope"),
                     "global_sparsity": t.params.get("global_sparsity"), "cost_s": m.get("cost_s")})
    screen = {k: rec.parent_metrics[k] for k in ("screen_wall_s", "screen_spearman", "screen_pairs")
              if k in rec.parent_metrics}
    result = sq_metrics.arm_result(rows, ctx["dense"], rec.wall_s, flags=SEARCH_ARMS[arm], budget=budget,
                                   failed=sum(t.status == "FAILED" for t in rec.trials), exit_code=rec.exit_code,
                                   screen=screen)
    result["cost_s"] += screen.get("screen_wall_s", 0.0)  # equal compute: the screening is spent too
    return result


def _run_one_shot(arm: str, ctx: dict, threads: int) -> dict:
    """One allocation at each target sparsity, fine-tuned like a trial (run_trial, same data, baseline,
    epochs and the recipe's fine-tune lr: the geometric mean of the searched range)."""
    import math

    from pruners.layers import prunable_layers
    from trainables.trial import run_trial
    from trainables.trial_config import SPARSITY_PREFIX, TrialConfig

    cfg, data, baseline = ctx["cfg"], ctx["data"], ctx["baseline"]
    constants = {k: v for k, v in ctx["constants"].items() if not k.startswith(SPARSITY_PREFIX)}
    lr = math.sqrt(cfg.finetune_lr[0] * cfg.finetune_lr[1])
    layers = list(prunable_layers(baseline.build(cfg.model, data)))
    rows, t0 = [], time.perf_counter()
    with common.torch_threads(threads):
        for s in SPARSITIES:
            config = {**constants, "method": "magnitude", "magnitude_scope": ONE_SHOT_SCOPES[arm], "finetune_lr": lr}
            if arm == "uniform":
                config.update({SPARSITY_PREFIX + n: s for n in layers})
            else:
                config["global_sparsity"] = s
            m = run_trial(TrialConfig.from_flat(config), data, baseline).metrics
            rows.append({"run_id": f"{arm}-{s:g}", "method": "magnitude", "val_acc": m["val_acc"],
                         "test_acc": m["test_acc"], "size_bytes": m["size_bytes"],
                         "cost": m["size_bytes"] / ctx["dense"]["size_bytes"], "magnitude_scope": ONE_SHOT_SCOPES[arm],
                         "sparsity": s, "finetune_lr": lr, "cost_s": m["cost_s"]})
    return sq_metrics.arm_result(rows, ctx["dense"], time.perf_counter() - t0, scope=ONE_SHOT_SCOPES[arm])


def _render(name: str) -> int:
    path = common.RESULTS / f"{name}.json"
    if not path.exists():
        print(f"error: --render-only: {path} does not exist; run the benchmark first", file=sys.stderr)
        return 2
    p = json.loads(path.read_text())
    png = common.RESULTS / f"{name}.png"
    sq_render.plot(p, png)
    markdown.update_section(name, sq_render.markdown(p, png))
    print(f"rendered {path.name}, {png.name} and its BENCHMARKS.md section")
    return 0


def markdown_section(p: dict, name: str) -> str:
    """This benchmark's BENCHMARKS.md section, from its JSON (bench/render.py)."""
    return sq_render.markdown(p, common.RESULTS / f"{name}.png")


def summary_row(p: dict) -> tuple[str, str]:
    return sq_render.summary_row(p)


if __name__ == "__main__":
    sys.exit(main())
