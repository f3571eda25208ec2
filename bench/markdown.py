"""BENCHMARKS.md: the intro, one section per result (between `<!-- bench:<key>:start -->` and
`<!-- bench:<key>:end -->`) and a summary table. Each benchmark script renders its own section
and its own summary row (`markdown(payload, name)`, `summary_row(payload)`); this module only
places them, so a rerun updates its table in place and leaves the other sections alone."""
from __future__ import annotations

import contextlib
import fcntl
import importlib
import json

from bench.common import BENCH_MD, RESULTS

HEADER = """# Benchmarks

Each benchmark is one command, run from the repository root with the project's virtual
environment active: on a fresh clone, `make install && . .venv/bin/activate` first. `make bench`
runs the quick setting of every script in turn (about 75 min on 2 cores). Each writes JSON under `bench/results/` and
replaces its own section below (between its `bench:<name>` markers), so a rerun updates the
table in place; `python bench/render.py` rebuilds this file from the JSON alone. Every table
records the machine (cores, CPU model from /proc/cpuinfo, GPU) and the date. The machine they
ran on is a shared 2-core VM on which other engineers run tests: the benchmarks compare arms
side by side (interleaved, alternating, or paired per round), record how much CPU other
tenants used meanwhile, and wait (up to a minute) for a quiet moment before a wall-clock arm.
Work folders (MLflow/Optuna databases, the decoded CIFAR-10 cache, baselines) go to
`/tmp/prune-search-bench` (`PRUNE_BENCH_HOME`); CIFAR-10 comes from `/work/shared/data/cifar10-jpg`
(`PRUNE_BENCH_CIFAR`).

| script | what it shows | goal | quick (default) | full setting |
|---|---|---|---|---|
| `bench/baseline_recipe.py` | val/test accuracy of the dense model a default search starts from (the recipe's quality) | (report) | CIFAR-10, 15 epochs (~15-25 min on an idle machine) | `--arms default,plain`: also the recipe it replaced |
| `bench/search_quality.py` | hypervolume (reference: 25% of dense bytes, dense - 15 pt) and test accuracy at <= 10/5/2% of dense bytes, every pick on validation accuracy: the default search vs `random` (the default's enqueued points, then the random sampler), `enqueued-only` (those points alone), `anchored` (--space anchored), and one-shot global/LAMP/ERK/uniform at 20-98% in fp32 and int8 through the same trial code; fronts plotted on test; front points whose per-layer ratios differ by >= 0.1 from the nearest one-shot allocation | per seed: default test HV >= 1.05x the best one-shot arm and >= 1.03x random; >= 2 front points that are not a one-shot allocation; <= 1 pt at 5%, <= 3 pt at 2% | digits, budget 50, seeds 0,1 (the quick check); `--budget 8 --seeds 0` quicker; `--arms ...,screen,gp,nsga2,family` adds the others | `--dataset cifar10`: ResNet-20 from the committed checkpoint (sha256 checked), 40k/5k/5k split of seed 0 for every seed, half-epoch fine-tune, budget 24: `--seeds 0` to develop, then `--seeds 0,1,2` to confirm (hours per seed); `--setting simplecnn` the second setting (budget 16); resumable per (arm, seed) |
| `bench/overhead.py` | N fixed trials through Ray + Optuna + MLflow vs a bare `run_trial` loop | overhead <= 5% of wall | CIFAR-10 subset, N=8 (~6 min) | `--n 12 --repeats 2` (~20 min); `--dataset digits` |
| `bench/throughput.py` | images/s of `trainables.loops.train` vs a minimal plain-PyTorch loop, with and without masks | >= 0.95x | 1 thread, 15 rounds (~3 min) | `--threads 1,2 --repeats 25` |
| `bench/speedup.py` | CPU latency of FPGM-pruned SimpleCNN / ResNet-20 vs dense at batch 1 and 256, beside FLOPs | (report) | 1 thread, 15 rounds (~3 min) | `--threads 1,2 --repeats 30` |
| `bench/article_claims.py` | the source article's CIFAR-10 numbers (magnitude drops, Taylor vs magnitude, lottery vs reinit, FPGM, int8/QAT) beside measured ones, mean ± std over seeds | (report) | session setting: 10k train / 5k val / 5k test images, 8-epoch baseline, 3 seeds, lottery (2 rounds, full retraining) on 2 (~100 min on 2 cores); resumable per point | `--full`: 40k images, 15 epochs, 3 seeds, 5 lottery rounds (many hours) |
| `bench/concurrency.py` | trials per hour with 1 vs 2 concurrent trials on 2 cores, and the machine's own ceiling | >= 1.8x | CIFAR-10 subset, N=8 (~10 min) | `--n 12 --repeats 2` (~25 min) |
"""

SECTION_ORDER = ("intro", "summary", "baseline_recipe_cifar10", "baseline_recipe_digits", "search_quality_digits", "search_quality_cifar10_resnet20", "search_quality_cifar10",
                 "overhead_cifar10",
                 "overhead_digits", "throughput_cifar10", "throughput_digits", "speedup", "concurrency_cifar10",
                 "concurrency_digits", "article_claims_cifar10", "fpgm_speed")


def _replace_block(text: str, key: str, body: str) -> str:
    start, end = f"<!-- bench:{key}:start -->", f"<!-- bench:{key}:end -->"
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        return before + block + after
    # A new section goes before the first present section that comes after it in SECTION_ORDER.
    rank = SECTION_ORDER.index(key) if key in SECTION_ORDER else len(SECTION_ORDER)
    for later in SECTION_ORDER[rank + 1:]:
        marker = f"<!-- bench:{later}:start -->"
        if marker in text:
            before, after = text.split(marker, 1)
            return before + block + "\n\n" + marker + after
    return text.rstrip("\n") + ("\n\n" if text.strip() else "") + block + "\n"


def update_section(key: str, body: str) -> None:
    """Replace (or insert) the section between this key's markers in BENCHMARKS.md, and refresh
    the intro and the summary of every result in bench/results/. A file lock keeps two
    benchmarks finishing at once from losing each other's section."""
    BENCH_MD.touch(exist_ok=True)
    with BENCH_MD.open("r+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            text = fh.read()
            text = _replace_block(text, "intro", HEADER)
            text = _replace_block(text, key, body)
            text = _replace_block(text, "summary", summary_markdown())
            fh.seek(0)
            fh.truncate()
            fh.write(text)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# Result file name prefix -> the script that wrote it (and renders it).
OWNERS = (("baseline_recipe", "bench.baseline_recipe"), ("search_quality", "bench.search_quality"), ("overhead", "bench.overhead"),
          ("throughput", "bench.throughput"), ("speedup", "bench.speedup"), ("concurrency", "bench.concurrency"),
          ("article_claims", "bench.article_claims"), ("fpgm_speed", "bench.fpgm_speed"))


def owner(name: str):
    """The benchmark module that wrote results/<name>.json, or None for an unknown file."""
    for prefix, module in OWNERS:
        if name.startswith(prefix):
            return importlib.import_module(module)
    return None


def _load_results() -> dict[str, dict]:
    out = {}
    for path in sorted(RESULTS.glob("*.json")):
        with contextlib.suppress(ValueError, OSError):
            out[path.stem] = json.loads(path.read_text())
    return out



def summary_markdown() -> str:
    """One line per result file: the headline figure and whether its goal is met, as the
    script that wrote the file words them."""
    rows = []
    for name, p in _load_results().items():
        module = owner(name)
        if module is None:
            continue
        try:
            fig, goal = module.summary_row(p)
        except (KeyError, TypeError, IndexError, ValueError):
            fig, goal = "(result file from an older version; rerun)", "?"
        rows.append(f"| `{name}` | {fig} | {goal} | {p.get('machine', {}).get('date', '?')} |")
    return "\n".join(["## Summary (latest run of each)", "",
                      "| benchmark | headline | goal | date |", "|---|---|---|---|", *rows])
