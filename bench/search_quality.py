"""Is the search worth its compute? Per arm, on the same data and dense baseline per seed:
  default        the product's search: TPE (multi-objective), its enqueued points first (one trial
                 per method, then the article's recipe: search.seeding.initial_points);
  random         exactly the default's enqueued points (passed explicitly), then Optuna's
                 RandomSampler (--sampler random): only the sampler differs from default;
  enqueued-only  the default's enqueued points alone (budget = their number): with `random`,
                 separates what the seeding gives from what the sampler adds;
  anchored       the default search in the anchored space (--space anchored: a one-shot allocation
                 at a sampled target, then one offset per layer);
  gp, nsga2      the default search with Optuna's GPSampler / NSGA-II (optional);
  screen         the default search after cheap screening (--screen 100; optional);
  family         the default search in the family space (--space family; optional);
  recipe         one-shot global magnitude (magnitude_scope global) at each target sparsity;
  lamp           one-shot LAMP allocation (Lee et al. 2021) at each target;
  erk            one-shot ERK allocation (Evci et al. 2020) at each target;
  uniform        one-shot: every prunable layer at the same ratio (magnitude_scope layer);
the one-shot arms at 20/50/80/90/95/98%, each target in fp32 AND int8 (12 points per arm), through
the product's own trial (trainables.trial.run_trial): the same fine-tune, BatchNorm re-estimation
and encoding as a search trial.

Settings (--dataset, --setting):
  digits                the quick check (SimpleCNN trained per seed, budget 50);
  cifar10 resnet20      the main CIFAR-10 benchmark (default for cifar10): the built-in resnet20
                        from the committed checkpoint bench/checkpoints/resnet20_cifar10.pt (its
                        sha256 is checked against bench/results/baseline_recipe_cifar10_resnet20.json
                        before anything runs), the JPEG copy's 40k/5k/5k split of --split-seed 0
                        for EVERY seed (the split the checkpoint was trained on), objective size,
                        all methods (lottery is left out: no initialization checkpoint to rewind to),
                        half-epoch masked fine-tune per trial, budget 24;
  cifar10 simplecnn     the second setting: SimpleCNN trained per seed (15 epochs, 40k images),
                        1/8-epoch fine-tune, budget 16.
Develop on seed 0 only; seeds 1 and 2 confirm and are never tuned on.

Figures (bench/sq_metrics.py; every choice among trials on validation accuracy, test accuracy only
reported for the trial chosen): hypervolume with reference point cost ratio 0.25 and accuracy =
dense - 15 pt, normalized so 1.0 = dense accuracy at zero size (validation HV of all trials; test
HV of the validation-selected front); the test accuracy of the val-picked trial at <= 10/5/2% of
dense bytes; one-shot points dominated by the val-picked front point at no more size; front points
whose per-layer ratios (MLflow sparsity.<layer>) differ by >= 0.1 in some layer from the nearest
one-shot allocation at the same overall target; the cost (sum of trial cost_s, plus the screening's
wall time); mean ± std over seeds (n=1 where one seed).

Resumable: the JSON records the measured code's commit, the settings, the dense accuracy and each
finished (arm, seed); a rerun with the same code (`MEASURED_CODE`) and settings skips the pairs
already there, so a long run can be finished later (another seed list adds seeds).

    python bench/search_quality.py                                   # digits, budget 50, seeds 0,1
    python bench/search_quality.py --budget 8 --seeds 0              # quick check
    python bench/search_quality.py --dataset cifar10 --seeds 0       # ResNet-20: develop on seed 0
    python bench/search_quality.py --dataset cifar10 --seeds 0,1,2   # ... then confirm on 1, 2
    python bench/search_quality.py --dataset cifar10 --setting simplecnn --seeds 0,1
    python bench/search_quality.py --dataset cifar10 --dry-run       # check flags + checkpoint, print the plan
    python bench/search_quality.py --render-only --dataset cifar10   # re-draw from the JSON
    python bench/search_quality.py --budget 6 --seeds 0 --results-dir /tmp/sq  # smoke test, results elsewhere
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, markdown, searches, sq_metrics, sq_render  # noqa: E402

SEARCH_ARMS = {"default": [], "random": ["--sampler", "random"], "enqueued-only": [],
               "anchored": ["--space", "anchored"], "gp": ["--sampler", "gp"], "nsga2": ["--sampler", "nsga2"],
               "screen": ["--screen", "100"], "family": ["--space", "family"]}
ENQUEUED_ARMS = ("random", "enqueued-only")  # given exactly the default's enqueued points
# What decides the figures: the product, the checkpoint and this benchmark's own measuring code.
CHECKPOINT = "bench/checkpoints/resnet20_cifar10.pt"  # relative to the repository root
CHECKPOINT_RECORD = "bench/results/baseline_recipe_cifar10_resnet20.json"  # arms.default.checkpoint_sha256
MEASURED_CODE = ("pruners", "trainables", "search", "mlflow_config", "pyproject.toml", CHECKPOINT,
                 "bench/common.py", "bench/searches.py", "bench/search_quality.py", "bench/sq_metrics.py")
ONE_SHOT_SCOPES = {"recipe": "global", "lamp": "lamp", "erk": "erk", "uniform": "layer"}
PRECISIONS = ("none", "int8")  # every one-shot target in both
ARMS = (*SEARCH_ARMS, *ONE_SHOT_SCOPES)
DEFAULT_ARMS = ("default", "random", "enqueued-only", "anchored", "recipe", "lamp", "erk", "uniform")
SPARSITIES = (0.2, 0.5, 0.8, 0.9, 0.95, 0.98)
# The SimpleCNN CIFAR-10 setting: the product's default split (40k training images, val and test
# 5k each) and its default strong recipe (15 epochs, augmentation + one-cycle), so pruning at high
# compression costs accuracy. Each trial fine-tunes on 1/8 of an epoch (5k images). Lottery
# retrains with that fine-tune (`--lottery-retrain finetune`): the paper's full retraining is 15
# epochs of 40k images per round, hours per trial here.
CIFAR_SIMPLECNN = ("--dataset", "cifar10", "--data-dir", str(common.CIFAR_DIR), "--finetune-epochs", "0.125",
                   "--lottery-retrain", "finetune")
# The deep setting: ResNet-20 from the committed checkpoint (bench/baseline_recipe.py, 40 epochs,
# trained on the split of seed 0, so every seed keeps --split-seed 0), half an epoch of masked
# fine-tune per trial (20k images), objective size, every method that can run from a checkpoint.
CIFAR_RESNET20 = ("--dataset", "cifar10", "--data-dir", str(common.CIFAR_DIR), "--model", "resnet20",
                  "--checkpoint", CHECKPOINT, "--split-seed", "0", "--objective", "size", "--finetune-epochs", "0.5")


@dataclass(frozen=True)
class Setting:
    flags: tuple[str, ...]
    budget: int
    name: str  # the JSON's stem and the BENCHMARKS.md section's key
    title: str
    checkpoint: str | None = None  # relative to the repository root; its hash is checked


SETTINGS = {("digits", "simplecnn"): Setting(common.DIGITS, 50, "search_quality_digits", "digits"),
            ("cifar10", "resnet20"): Setting(CIFAR_RESNET20, 24, "search_quality_cifar10_resnet20",
                                             "cifar10 (ResNet-20 from the committed checkpoint)", CHECKPOINT),
            ("cifar10", "simplecnn"): Setting(CIFAR_SIMPLECNN, 16, "search_quality_cifar10", "cifar10 (SimpleCNN)")}
DEFAULT_SETTING = {"digits": "simplecnn", "cifar10": "resnet20"}


def _parse(argv):
    ap = common.BenchParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=sorted({d for d, _ in SETTINGS}), default="digits")
    ap.add_argument("--setting", default=None, help="model setting: cifar10 resnet20 (default) or simplecnn; "
                    "digits simplecnn (the only one)")
    ap.add_argument("--budget", type=int, default=None,
                    help="trials per search arm (default: digits 50, cifar10 resnet20 24, simplecnn 16)")
    ap.add_argument("--seeds", default="0,1", help="comma-separated seeds (default 0,1)")
    ap.add_argument("--arms", default=",".join(DEFAULT_ARMS), help=f"comma-separated subset of {', '.join(ARMS)} "
                    f"(default {','.join(DEFAULT_ARMS)})")
    ap.add_argument("--home", type=Path, default=common.DEFAULT_HOME)
    ap.add_argument("--extra", default="", help="extra search flags, e.g. '--finetune-epochs 0.5' (last one wins)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the one-shot arms (default 2)")
    ap.add_argument("--results-dir", type=Path, default=None,
                    help="write the JSON, plot and section (<name>.md) there instead of bench/results and "
                    "BENCHMARKS.md (a smoke test)")
    ap.add_argument("--dry-run", action="store_true",
                    help="check the flags and the checkpoint's hash, print each arm's search flags, run nothing")
    ap.add_argument("--render-only", action="store_true",
                    help="re-draw the plot and the BENCHMARKS.md section from the setting's JSON")
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
    args.setting = args.setting or DEFAULT_SETTING[args.dataset]
    if (args.dataset, args.setting) not in SETTINGS:
        choices = ", ".join(s for d, s in SETTINGS if d == args.dataset)
        ap.error(f"--setting: {args.setting!r} is not accepted with --dataset {args.dataset}; expected {choices}")
    args.arms = args.arms.split(",")
    setting = SETTINGS[args.dataset, args.setting]
    args.name, args.title, args.checkpoint = setting.name, setting.title, setting.checkpoint
    args.flags, args.budget = [*setting.flags, *args.extra.split()], args.budget or setting.budget
    args.results = args.results_dir.expanduser().absolute() if args.results_dir else common.RESULTS
    return args


def run_flags(flags) -> list[str]:
    """The recorded flags as a search takes them: the checkpoint's path made absolute (the record
    keeps it relative to the repository, so any checkout resumes the same settings)."""
    out = list(flags)
    for i, flag in enumerate(out[:-1]):
        if flag == "--checkpoint" and not Path(out[i + 1]).is_absolute():
            out[i + 1] = str(common.ROOT / out[i + 1])
    return out


def main(argv=None) -> int:
    args = _parse(argv)
    if args.render_only:
        return _render(args.name, args.results)
    sha = _check_checkpoint(args.checkpoint) if args.checkpoint else None
    _check_flags(args.flags)
    if args.dry_run:
        return _dry_run(args, sha)
    settings = {"dataset": args.dataset, "setting": args.setting, "search_flags": args.flags, "budget": args.budget,
                "sparsities": list(SPARSITIES), "precisions": list(PRECISIONS), "checkpoint_sha256": sha}
    payload = (_previous(args.name, settings, args.results)
               or {**settings, "benchmark": "search_quality", "title": args.title, "per_seed": {}})
    payload.update(command=common.command("search_quality.py", argv), machine=common.machine_info(),
                   code_commit=common.code_commit(MEASURED_CODE), hv_reference=_reference_text(),
                   arms_requested=args.arms, seeds=sorted({*payload.get("seeds", []), *args.seeds}))
    home = searches.run_home(args.home, f"search_quality-{args.name}-{common.stamp()}")
    searches.warm_mlflow(home)
    with searches.ray_cluster():
        for seed in args.seeds:
            _run_seed(args, payload, seed, home)
    _render(args.name, args.results)
    print(json.dumps(payload["goals"], indent=1))
    return 0


def _fail(message: str):
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _check_checkpoint(rel: str) -> str:
    """The committed checkpoint, byte for byte: its sha256 must be the one bench/baseline_recipe.py
    recorded when it saved it. One line and exit 2 otherwise, before anything runs."""
    path, record = common.ROOT / rel, common.ROOT / CHECKPOINT_RECORD
    try:
        expected = json.loads(record.read_text())["arms"]["default"]["checkpoint_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _fail(f"--setting: cannot read the checkpoint's recorded sha256 (arms.default.checkpoint_sha256) from "
              f"{CHECKPOINT_RECORD}: {type(exc).__name__}: {exc}")
    try:
        got = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        _fail(f"--setting: cannot read the checkpoint {rel}: {exc.strerror or exc}")
    if got != expected:
        _fail(f"--setting: {rel} has sha256 {got}, not {expected} as {CHECKPOINT_RECORD} records; restore the "
              "committed file (it is what the benchmark's baseline is)")
    return got


def _check_flags(flags) -> None:
    """Bad --extra flags: the product's own one-line message, exit 2, before anything runs."""
    from search.config import ConfigError, load_config

    try:
        load_config(run_flags(flags))
    except ConfigError as exc:
        _fail(f"--extra: {exc}")


def _enqueued(flags: list[str], budget: int, home: Path) -> list[dict]:
    """The points the default search enqueues with these flags and budget (search.seeding)."""
    from search.config import load_config
    from search.seeding import initial_points

    return [dict(p) for p in initial_points(load_config([*run_flags(flags), "--budget", str(budget),
                                                        "--home", str(home)]))]


def _search_argv(arm: str, flags: list[str], budget: int, n_enqueued: int) -> list[str]:
    if arm == "enqueued-only":
        return [*flags, "--budget", str(n_enqueued)]
    return [*flags, "--budget", str(budget), *SEARCH_ARMS[arm]]


def _dry_run(args, sha: str | None) -> int:
    home = args.home.expanduser().absolute()
    print(f"setting {args.dataset} {args.setting}: {args.title}; budget {args.budget}; seeds {args.seeds}")
    if sha:
        print(f"checkpoint {args.checkpoint}: sha256 {sha} (matches {CHECKPOINT_RECORD})")
    for seed in args.seeds:
        flags = [*args.flags, "--seed", str(seed)]
        points = _enqueued(flags, args.budget, home)
        print(f"seed {seed}: {len(points)} enqueued points: {json.dumps(points)}")
        for arm in args.arms:
            if arm in SEARCH_ARMS:
                given = " (+ the default's enqueued points)" if arm in ENQUEUED_ARMS else ""
                print(f"  {arm}: prune-search run {' '.join(_search_argv(arm, flags, args.budget, len(points)))}{given}")
            else:
                print(f"  {arm}: one-shot magnitude_scope {ONE_SHOT_SCOPES[arm]} at "
                      f"{'/'.join(f'{s:g}' for s in SPARSITIES)} x quantize {'/'.join(PRECISIONS)}")
    return 0


def _previous(name: str, settings: dict, results: Path) -> dict:
    """The JSON of an earlier run by the same code with the same settings, else nothing."""
    path = results / f"{name}.json"
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


def _run_seed(args, payload: dict, seed: int, home: Path) -> None:
    """Every requested arm on one seed (one shared baseline), each saved as soon as it finishes."""
    ps = payload["per_seed"].setdefault(str(seed), {"arms": {}})
    todo = [a for a in args.arms if a not in ps["arms"]]
    for arm in args.arms:
        if arm not in todo:
            print(f"seed {seed} {arm}: already in {args.name}.json (code {payload['code_commit']}), skipped")
    if not todo:
        return
    flags = [*args.flags, "--seed", str(seed)]
    with common.torch_threads(args.threads):
        ctx = _seed_context(flags, home)
    ctx["enqueued"] = _enqueued(flags, args.budget, home)
    ps.update(dense=ctx["dense"], baseline_key=ctx["key"], layer_sizes=ctx["sizes_by_layer"], **ctx["sizes"])
    for arm in todo:
        t0 = time.perf_counter()
        load = list(os.getloadavg())
        if arm in SEARCH_ARMS:
            result = _run_search_arm(arm, flags, args.budget, home, ctx, f"sq-{args.name}-{arm}-s{seed}")
        else:
            result = _run_one_shot(arm, ctx, args.threads)
        result.update(date=common.machine_info()["date"], load_avg_at_start=[round(x, 2) for x in load])
        ps["arms"][arm] = result
        _save(payload, args.name, args.results)
        hv = result["hv"]
        print(f"seed {seed} {arm}: {result['n_trials']} trials, HV val {hv['val']:.4f} test {hv['test']:.4f}, "
              f"cost {result['cost_s']:.0f}s, wall {time.perf_counter() - t0:.0f}s", flush=True)


def _save(payload: dict, name: str, results: Path) -> None:
    per_seed = payload["per_seed"]
    payload["summary"] = sq_metrics.summarize(per_seed, ARMS)
    payload["goals"] = sq_metrics.goals(per_seed)
    common.write_json(name, payload, results)


def _seed_context(flags: list[str], home: Path) -> dict:
    """Data, baseline and the constants every trial of this seed shares (trains the baseline once)."""
    from pruners.layers import prunable_layers
    from trainables import compress

    cfg, data, baseline = searches.load_data_and_baseline(run_flags(flags), home, verbose=True)
    dense = {"val_acc": baseline.metrics["val_acc"], "test_acc": baseline.metrics["test_acc"],
             "size_bytes": compress.size_bytes(compress.encode(baseline.state, {}))}
    weights = {n: m.weight.detach().clone() for n, m in prunable_layers(baseline.build(cfg.model, data)).items()}
    return {"cfg": cfg, "data": data, "baseline": baseline, "key": baseline.key, "dense": dense,
            "constants": searches.trial_constants(cfg, data, baseline),
            "sizes": {"n_train": len(data.train), "n_val": len(data.val), "n_test": len(data.test)},
            "sizes_by_layer": {n: w.numel() for n, w in weights.items()}, "allocate": allocator(weights)}


def allocator(weights: dict):
    """allocate(arm, target) -> each layer's ratio under that one-shot arm's allocation of `target`
    over these dense weights: the product's own allocation code (pruners.magnitude's global, LAMP,
    ERK through search.anchored.anchor_ratios; uniform: the target everywhere)."""
    from search.anchored import anchor_ratios

    cache: dict[tuple[str, float], dict[str, float]] = {}

    def allocate(arm: str, target: float) -> dict[str, float]:
        target = min(max(round(target, 6), 0.0), 0.999)
        if (arm, target) not in cache:
            if arm == "uniform" or target == 0.0:
                cache[arm, target] = {n: target for n in weights}
            else:
                cache[arm, target] = anchor_ratios(weights, ONE_SHOT_SCOPES[arm], target)
        return cache[arm, target]

    return allocate


def _gap(ctx: dict, ratios: dict[str, float]) -> dict | None:
    """sq_metrics.one_shot_gap of these ratios; None (said so) if an allocation fails: a figure
    missing from one row never costs the arm's hours of trials."""
    try:
        return sq_metrics.one_shot_gap(ratios, ctx["sizes_by_layer"], ctx["allocate"])
    except Exception as exc:  # noqa: BLE001 - recorded as not measured, the arm goes on
        print(f"one-shot gap not measured for {sorted(ratios.items())[:3]}...: {type(exc).__name__}: {exc}", flush=True)
        return None


def _run_search_arm(arm: str, flags: list[str], budget: int, home: Path, ctx: dict, run_name: str) -> dict:
    """One search through the product's own entry, read back from MLflow."""
    from trainables.trial_config import SPARSITY_PREFIX

    points = ctx["enqueued"]
    argv = _search_argv(arm, flags, budget, len(points))
    if arm == "enqueued-only" and not points:  # nothing to run: an empty arm, said so
        return sq_metrics.arm_result([], ctx["dense"], 0.0, flags=[], budget=0, enqueued=[], failed=0, exit_code=None)
    rec = searches.run_search(run_flags(argv), home, run_name, points=points if arm in ENQUEUED_ARMS else None)
    if rec.parent_params.get("baseline_key") != ctx["key"] or rec.dense_size != ctx["dense"]["size_bytes"]:
        raise RuntimeError(f"{arm} search used another baseline than the one-shot arms")
    dense_size = ctx["dense"]["size_bytes"]
    rows = []
    for t in rec.finished():
        m = t.metrics
        ratios = {k[len(SPARSITY_PREFIX):]: float(v) for k, v in t.params.items() if k.startswith(SPARSITY_PREFIX)}
        rows.append({"run_id": t.run_id, "method": t.method, "val_acc": m["val_acc"], "test_acc": m["test_acc"],
                     "size_bytes": m["size_bytes"], "cost": m["size_bytes"] / dense_size,
                     "magnitude_scope": t.params.get("magnitude_scope"), "quantize": t.params.get("quantize"),
                     "global_sparsity": t.params.get("global_sparsity"), "optuna_trial": t.params.get("optuna_trial"),
                     "cost_s": m.get("cost_s"), "ratios": ratios, "one_shot_gap": _gap(ctx, ratios)})
    screen = {k: rec.parent_metrics[k] for k in ("screen_wall_s", "screen_spearman", "screen_pairs")
              if k in rec.parent_metrics}
    result = sq_metrics.arm_result(rows, ctx["dense"], rec.wall_s, flags=SEARCH_ARMS[arm],
                                   budget=len(points) if arm == "enqueued-only" else budget,
                                   enqueued=points if arm in (*ENQUEUED_ARMS, "default") else None,
                                   failed=sum(t.status == "FAILED" for t in rec.trials), exit_code=rec.exit_code,
                                   screen=screen)
    result["cost_s"] += screen.get("screen_wall_s", 0.0)  # equal compute: the screening is spent too
    return result


def _run_one_shot(arm: str, ctx: dict, threads: int) -> dict:
    """One allocation at each target sparsity, in fp32 and int8, fine-tuned like a trial (run_trial,
    same data, baseline, epochs and the recipe's fine-tune lr: the geometric mean of the searched
    range); each point records its per-layer ratios."""
    import math

    from trainables.trial import run_trial
    from trainables.trial_config import SPARSITY_PREFIX, TrialConfig

    cfg, data, baseline = ctx["cfg"], ctx["data"], ctx["baseline"]
    constants = {k: v for k, v in ctx["constants"].items() if not k.startswith(SPARSITY_PREFIX)}
    lr = math.sqrt(cfg.finetune_lr[0] * cfg.finetune_lr[1])
    layers = list(ctx["sizes_by_layer"])
    rows, t0 = [], time.perf_counter()
    with common.torch_threads(threads):
        for s in SPARSITIES:
            for q in PRECISIONS:
                config = {**constants, "method": "magnitude", "magnitude_scope": ONE_SHOT_SCOPES[arm],
                          "finetune_lr": lr, "quantize": q}
                if arm == "uniform":
                    config.update({SPARSITY_PREFIX + n: s for n in layers})
                else:
                    config["global_sparsity"] = s
                out = run_trial(TrialConfig.from_flat(config), data, baseline)
                m = out.metrics
                ratios = {n: float(r) for n, r in out.effective_ratios.items()}
                rows.append({"run_id": f"{arm}-{s:g}-{q}", "method": "magnitude", "val_acc": m["val_acc"],
                             "test_acc": m["test_acc"], "size_bytes": m["size_bytes"],
                             "cost": m["size_bytes"] / ctx["dense"]["size_bytes"],
                             "magnitude_scope": ONE_SHOT_SCOPES[arm], "sparsity": s, "quantize": q, "finetune_lr": lr,
                             "cost_s": m["cost_s"], "ratios": ratios, "one_shot_gap": _gap(ctx, ratios)})
    return sq_metrics.arm_result(rows, ctx["dense"], time.perf_counter() - t0, scope=ONE_SHOT_SCOPES[arm])


def _render(name: str, results: Path = common.RESULTS) -> int:
    path = results / f"{name}.json"
    if not path.exists():
        print(f"error: --render-only: {path} does not exist; run the benchmark first", file=sys.stderr)
        return 2
    p = json.loads(path.read_text())
    png = results / f"{name}.png"
    sq_render.plot(p, png)
    body = sq_render.markdown(p, png)
    if results == common.RESULTS:
        markdown.update_section(name, body)
        print(f"rendered {path.name}, {png.name} and its BENCHMARKS.md section")
    else:  # a scratch folder: BENCHMARKS.md is left alone
        (results / f"{name}.md").write_text(body + "\n")
        print(f"rendered {path.name}, {png.name} and {name}.md in {results}")
    return 0


def markdown_section(p: dict, name: str) -> str:
    """This benchmark's BENCHMARKS.md section, from its JSON (bench/render.py)."""
    return sq_render.markdown(p, common.RESULTS / f"{name}.png")


def summary_row(p: dict) -> tuple[str, str]:
    return sq_render.summary_row(p)


if __name__ == "__main__":
    sys.exit(main())
