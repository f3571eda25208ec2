"""Shared by the benchmarks: machine info, JSON results, the BENCHMARKS.md section update,
one Ray cluster per script, running a search in-process and reading it back from MLflow, and
fixed trial configurations sampled once from the search space.

Benchmarks are not tests: they measure, write `bench/results/<name>.json`, and replace their
own section of BENCHMARKS.md (between `<!-- bench:<key>:start -->` and `<!-- bench:<key>:end -->`),
so a rerun updates the table in place and leaves the other sections alone.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
BENCH_MD = ROOT / "BENCHMARKS.md"
# Work folder shared by every benchmark: decoded CIFAR-10 and trained baselines are cached
# there, so only the first run pays for them. MLflow/Optuna databases are per script run.
DEFAULT_HOME = Path(os.environ.get("PRUNE_BENCH_HOME", "/tmp/prune-search-bench"))
CIFAR_DIR = Path(os.environ.get("PRUNE_BENCH_CIFAR", "/work/shared/data/cifar10-jpg"))
# A CIFAR-10 recipe that fits a 2-core CPU: 5,000 training images (validation and test keep
# 5,000 each), 8 baseline epochs, 1 fine-tune epoch per trial.
CIFAR_QUICK = ("--dataset", "cifar10", "--data-dir", str(CIFAR_DIR), "--train-subset", "5000",
               "--baseline-epochs", "8", "--finetune-epochs", "1")
DIGITS = ("--dataset", "digits")

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
| `bench/search_quality.py` | hypervolume of the default search vs random search vs the article's recipe, fronts plotted | default > random; default front dominates every recipe point on val and test | digits, budget 50, 3 seeds (~10-25 min); `--budget 10` ~3 min | also `--dataset cifar10 --budget 30` (~40 min) |
| `bench/overhead.py` | N fixed trials through Ray + Optuna + MLflow vs a bare `run_trial` loop | overhead <= 5% of wall | CIFAR-10 subset, N=8 (~6 min) | `--n 12 --repeats 2` (~20 min); `--dataset digits` |
| `bench/throughput.py` | images/s of `trainables.loops.train` vs a minimal plain-PyTorch loop, with and without masks | >= 0.95x | 1 thread, 15 rounds (~3 min) | `--threads 1,2 --repeats 25` |
| `bench/speedup.py` | CPU latency of FPGM-pruned SimpleCNN / ResNet-20 vs dense at batch 1 and 256, beside FLOPs | (report) | 1 thread, 15 rounds (~3 min) | `--threads 1,2 --repeats 30` |
| `bench/concurrency.py` | trials per hour with 1 vs 2 concurrent trials on 2 cores, and the machine's own ceiling | >= 1.8x | CIFAR-10 subset, N=8 (~10 min) | `--n 12 --repeats 2` (~25 min) |
"""


# ---- machine, results, BENCHMARKS.md --------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str:
    """The checkout's commit (with "+changes" when the work tree differs), so every figure names
    the code that produced it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        # The benchmarks' own outputs (results, BENCHMARKS.md) don't count as changed code.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)bench/results", ":(exclude)BENCHMARKS.md"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def machine_info() -> dict[str, Any]:
    import torch

    gpu = "none"
    if torch.cuda.is_available():
        gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for mod in ("ray", "optuna", "mlflow"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing package is reported, not fatal
            versions[mod] = "n/a"
    mem_gb = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 2**20, 1)
    return {"cores": os.cpu_count(), "cpu_model": cpu_model(), "gpu": gpu, "memory_gb": mem_gb,
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()], "versions": versions,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": git_commit()}


def command(script: str, argv: Sequence[str] | None = None) -> str:
    argv = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", f"bench/{script}", *argv])


def machine_line(info: dict[str, Any]) -> str:
    load = ", ".join(str(x) for x in info["load_avg_at_start"])
    return (f"Machine: {info['cores']} cores, CPU `{info['cpu_model']}`, GPU {info['gpu']}, "
            f"{info['memory_gb']} GB; torch {info['versions']['torch']}, ray {info['versions']['ray']}, "
            f"optuna {info['versions']['optuna']}, mlflow {info['versions']['mlflow']}; "
            f"load average at start {load}. Date: {info['date']}"
            + (f", commit {info['commit']}." if info.get("commit") else "."))


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)
    return path


SECTION_ORDER = ("intro", "summary", "search_quality_digits", "search_quality_cifar10", "overhead_cifar10",
                 "overhead_digits", "throughput_cifar10", "throughput_digits", "speedup", "concurrency_cifar10",
                 "concurrency_digits")


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


def _load_results() -> dict[str, dict]:
    out = {}
    for path in sorted(RESULTS.glob("*.json")):
        with contextlib.suppress(ValueError, OSError):
            out[path.stem] = json.loads(path.read_text())
    return out


def summary_markdown() -> str:
    """One line per result file: the headline figure and whether its goal is met."""
    rows = []
    for name, p in _load_results().items():
        date = p.get("machine", {}).get("date", "?")
        try:
            if name.startswith("search_quality"):
                s, g = p["summary"], p["goals"]
                fig = (f"HV default {s['default']['hv_val'][0]:.4f} ± {s['default']['hv_val'][1]:.4f}, random "
                       f"{s['random']['hv_val'][0]:.4f} ± {s['random']['hv_val'][1]:.4f}, recipe "
                       f"{s['recipe']['hv_val'][0]:.4f} ± {s['recipe']['hv_val'][1]:.4f} (budget {p['budget']}, "
                       f"{len(p['seeds'])} seeds); recipe points dominated: val {g['recipe_points_dominated_val']}, "
                       f"test {g['recipe_points_dominated_test']}")
                goal = (f"HV > random: {'met' if g['default_hv_gt_random_mean'] else 'MISSED'} "
                        f"({g['default_hv_gt_random_seeds']} seeds); dominance: "
                        + ("met" if g["recipe_points_dominated_val"].split("/")[0] == g["recipe_points_dominated_val"].split("/")[1]
                           and g["recipe_points_dominated_test"].split("/")[0] == g["recipe_points_dominated_test"].split("/")[1]
                           else "MISSED"))
            elif name.startswith("overhead"):
                r = p["result"]
                if "overhead_structural" not in r:  # written before the field existed
                    from bench.overhead import _structural

                    r.update(_structural(r, p["runs"], p["n"]))
                fig = (f"{r['overhead_total']:.1%} of wall measured, {r['overhead_structural']:.1%} structural "
                       f"(noise-robust; {r['structural_fixed_s']:.1f}s per search + {r['structural_per_trial_s']:.2f}s "
                       f"per trial) for {p['n']} trials of ~{r['mean_trial_s_bare']:.1f}s; projected at 50 such trials: "
                       f"{r['projected_overhead_by_budget']['50']:.1%}")
                goal = ("<= 5%: " + ("met" if max(r["overhead_total"], r["overhead_structural"]) <= 0.05 else "MISSED"))
            elif name.startswith("throughput"):
                fig = "; ".join(f"{t} thread(s): {r['ratio_no_masks']:.3f}x, with masks {r['ratio_masks']:.3f}x"
                                for t, r in p["results"].items())
                goal = ">= 0.95x: " + ("met" if all(r["goal_met"] for r in p["results"].values()) else "MISSED")
            elif name == "speedup":
                parts = []
                for m, r in p["results"].items():
                    lat = r["latency"]
                    cells = ", ".join(f"{k.split('_')[1].replace('batch', 'batch ')}: {v['ratio_vs_dense']['fpgm50']:.2f}"
                                      for k, v in lat.items() if k.startswith("threads1_"))
                    parts.append(f"{m} FPGM 50%: FLOPs {r['flops']['fpgm50'] / r['flops']['dense']:.2f}, latency {cells}")
                fig, goal = "; ".join(parts), "(report)"
            elif name.startswith("concurrency"):
                r = p["result"]
                c = r.get("cleanest", {})
                fig = (f"{r['speedup_fit']:.2f}x trials/hour, median of {p['repeats']} run(s) ({p['n']} trials; other "
                       f"tenants used {r['median']['1'].get('others_cores', float('nan')):.2f} / "
                       f"{r['median']['2'].get('others_cores', float('nan')):.2f} cores in the 1 / 2 arms)")
                if c:
                    fig += (f"; cleanest runs {c['speedup_fit']:.2f}x (others {c['others_cores']['1']:.2f} / "
                            f"{c['others_cores']['2']:.2f} cores)")
                if "bare" in r:
                    fig += f"; plain processes, no Ray: {r['bare']['speedup']:.2f}x"
                goal = f">= 1.8x: {'met' if r['goal_met'] else 'MISSED'}"
            else:
                continue
        except (KeyError, TypeError, IndexError, ValueError):
            fig, goal = "(result file from an older version; rerun)", "?"
        rows.append(f"| `{name}` | {fig} | {goal} | {date} |")
    return "\n".join(["## Summary (latest run of each)", "",
                      "| benchmark | headline | goal | date |", "|---|---|---|---|", *rows])


def add_trial_set_args(ap) -> None:
    """The options overhead.py and concurrency.py share: which N fixed trials, how often, where."""
    ap.add_argument("--dataset", choices=("digits", "cifar10"), default="cifar10")
    ap.add_argument("--n", type=int, default=8, help="trial configurations (default 8; full setting 12)")
    ap.add_argument("--repeats", type=int, default=1, help="times each arm runs, alternating (default 1)")
    ap.add_argument("--config-seed", type=int, default=1234, help="seed of the random draw of the N configs")
    ap.add_argument("--home", type=Path, default=DEFAULT_HOME, help=f"work folder (default {DEFAULT_HOME})")
    ap.add_argument("--max-wait", type=float, default=60,
                    help="before each arm, wait up to this many seconds for other tenants to go quiet (default 60)")


def mean_std(xs: Sequence[float]) -> tuple[float, float]:
    xs = [float(x) for x in xs]
    if not xs:
        return math.nan, math.nan
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def fmt_ms(xs: Sequence[float], digits: int = 4) -> str:
    m, s = mean_std(xs)
    return f"{m:.{digits}f} ± {s:.{digits}f}"


# ---- Ray and searches -----------------------------------------------------------------------

@contextlib.contextmanager
def ray_cluster(num_cpus: int = 2) -> Iterator[float]:
    """ONE local Ray cluster for the whole script (run_search reuses an initialized Ray).
    Yields the seconds ray.init took."""
    import ray

    from search.cluster import start_local_ray

    started = not ray.is_initialized()
    t0 = time.perf_counter()
    if started:
        start_local_ray(num_cpus=num_cpus)  # as a search starts it: 127.0.0.1 only
    try:
        yield time.perf_counter() - t0
    finally:
        if started:
            ray.shutdown()


def warm_mlflow(home: Path) -> float:
    """Create the MLflow database before anything is timed (first use runs migrations, ~6 s)."""
    from mlflow.tracking import MlflowClient

    from mlflow_config import tracking

    t0 = time.perf_counter()
    home.mkdir(parents=True, exist_ok=True)
    MlflowClient(tracking.resolve_tracking_uri(None, home.resolve())).search_experiments()
    return time.perf_counter() - t0


@dataclass
class TrialRecord:
    run_id: str
    method: str
    status: str
    start_time: int  # ms since epoch (MLflow child run created, inside the Ray worker)
    end_time: int | None
    metrics: dict[str, float]
    params: dict[str, str]


@dataclass
class SearchRecord:
    name: str
    exit_code: int
    wall_s: float  # the whole run_search call (cluster already up)
    fit_s: float  # Tuner.fit() alone, as the search logged it (search_wall_s)
    parent_run_id: str
    parent_metrics: dict[str, float]
    parent_params: dict[str, str]
    trials: list[TrialRecord] = field(default_factory=list)
    t0_epoch_ms: float = math.nan  # wall clock when run_search was called
    parent_start_ms: float = math.nan

    @property
    def dense_size(self) -> float:
        return self.parent_metrics["baseline_size_bytes"]

    def timeline(self) -> dict[str, float]:
        """Where the wall time of the search went, from MLflow's run timestamps (seconds)."""
        ts = sorted(self.trials, key=lambda t: t.start_time)
        if not ts or any(t.end_time is None for t in ts):
            return {}
        gaps = [(b.start_time - a.end_time) / 1000 for a, b in zip(ts, ts[1:])]
        return {
            "call_to_parent_run_s": (self.parent_start_ms - self.t0_epoch_ms) / 1000,
            "parent_run_to_first_trial_s": (ts[0].start_time - self.parent_start_ms) / 1000,
            "trials_span_s": (max(t.end_time for t in ts) - ts[0].start_time) / 1000,
            "after_last_trial_s": self.wall_s - (max(t.end_time for t in ts) - self.t0_epoch_ms) / 1000,
            "child_run_s_sum": sum((t.end_time - t.start_time) / 1000 for t in ts),
            "gap_between_trials_s_median": statistics.median(gaps) if gaps else math.nan,
            "gap_between_trials_s_sum": sum(gaps),
        }

    def finished(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.status == "FINISHED" and "val_acc" in t.metrics]


def run_search(argv: Sequence[str], home: Path, name: str, log_path: Path | None = None,
               points: list[dict[str, Any]] | None = None) -> SearchRecord:
    """One search through the product's own entry (load_config + run_search), then its parent
    and child runs read back from MLflow. `points` replaces the enqueued recipe with exactly
    these configurations (Optuna parameters), enqueued first, in order."""
    from mlflow.tracking import MlflowClient

    from mlflow_config import tracking
    from search.config import load_config
    from search.run import run_search as product_run_search

    cfg = load_config([*argv, "--home", str(home), "--name", name])
    log_path = log_path or (home / "logs" / f"{name}.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as fh, contextlib.redirect_stdout(fh):
        def log(msg: str) -> None:
            print(msg, file=fh, flush=True)

        t0, t0_epoch_ms = time.perf_counter(), time.time() * 1000
        code = product_run_search(cfg, log=log, points=points)
        wall = time.perf_counter() - t0
    uri = tracking.resolve_tracking_uri(None, home.resolve())
    client = MlflowClient(uri)
    parents = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                 filter_string=f"tags.search = '{name}' and tags.role = 'search'")
    if len(parents) != 1:
        raise RuntimeError(f"expected one parent run for {name}, found {len(parents)} (log: {log_path})")
    parent = parents[0]
    trials = [TrialRecord(r.info.run_id, r.data.tags.get("method", ""), r.info.status, r.info.start_time,
                          r.info.end_time, dict(r.data.metrics), dict(r.data.params))
              for r in tracking.child_runs(client, parent.info.experiment_id, parent.info.run_id)]
    trials.sort(key=lambda t: t.start_time)
    return SearchRecord(name, code, wall, float(parent.data.metrics.get("search_wall_s", math.nan)),
                        parent.info.run_id, dict(parent.data.metrics), dict(parent.data.params), trials,
                        t0_epoch_ms, parent.info.start_time)


def load_data_and_baseline(argv: Sequence[str], home: Path, log=lambda m: None):
    """Exactly the data and baseline a search with these flags uses (same cache, same key)."""
    from search.config import load_config
    from trainables.baseline import BaselineSpec, get_baseline
    from trainables.data import load_dataset

    cfg = load_config([*argv, "--home", str(home)])
    data = load_dataset(cfg.dataset, cfg.data_dir, home.resolve(), cfg.seed, cfg.val_fraction, cfg.test_fraction,
                        cfg.train_subset)
    spec = BaselineSpec(cfg.model, cfg.epochs[0], cfg.baseline_lr, cfg.batch_size, cfg.seed, cfg.augment,
                        tuple(sorted(set(cfg.lottery_rewind_iter) | {0})))
    baseline = get_baseline(spec, data, home.resolve(), log=log)
    return cfg, data, baseline


def trial_constants(cfg, data, baseline) -> dict[str, Any]:
    """The fixed settings the search merges into every trial config."""
    from search.space import make_spec
    from trainables.baseline import normalizer

    return dict(make_spec(cfg, baseline.build(cfg.model, data), normalizer(data, False)(data.val.x[:1])).constants)


def sample_configs(cfg, data, baseline, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """n configurations drawn once from the product's search space (random sampler).
    Returns the Optuna parameters of each (what gets enqueued); trial_constants completes them."""
    import optuna

    from search.space import define_space, make_spec
    from trainables.baseline import normalizer

    spec = make_spec(cfg, baseline.build(cfg.model, data), normalizer(data, False)(data.val.x[:1]))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        fixed = define_space(spec, trial)
        out.append({**trial.params, **{k: v for k, v in fixed.items() if k not in dict(spec.constants)}})
        study.tell(trial, [0.0, 0.0])
    return out


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S")


# ---- other tenants: how busy is the machine besides this benchmark? ---------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _system_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (f + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / _TICK, steal / _TICK


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, start time in ticks, own utime+stime in ticks), from /proc."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            raw = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        rest = raw[raw.rindex(")") + 2:].split()
        out[int(d)] = (int(rest[1]), int(rest[19]), int(rest[11]) + int(rest[12]))
    return out


def _descendants(table: dict[int, tuple[int, int, int]], root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            out.append(pid)
            stack.extend(children.get(pid, []))
    return out


def _category(pid: int, root: int) -> str:
    """driver | trials | bare-workers | the Ray service's name (raylet, gcs_server, dashboard.py,
    ray::DashboardAgent, ray::IDLE, ...)."""
    if pid == root:
        return "driver"
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "other"
    first = args[0]
    if first.startswith("ray::") and ("ImplicitFunc" in first or "train" in first):
        return "trials"
    if "multiprocessing" in " ".join(args[1:3]):
        return "bare-workers"
    if first.startswith("ray::"):
        return first.split()[0]
    if os.path.basename(first).startswith("python"):
        script = next((a for a in args[1:] if a.endswith(".py")), args[1] if len(args) > 1 else first)
        return os.path.basename(script)
    return os.path.basename(first)


class CpuMonitor:
    """Wall time; CPU used by this process and its descendants (driver, Ray services, trial
    workers: sampled every `interval` s, because Ray reaps its dead workers without adding them
    to anyone's child CPU times); and CPU used by everything else on the machine (other
    tenants) over a `with` block."""

    def __init__(self, interval: float = 1.0):
        import threading

        self.interval, self.root = interval, os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.by_category: dict[str, float] = {}
        self._last: dict[tuple[int, int], int] = {}

    def _sample(self, count: bool = True) -> None:
        table = _proc_table()
        for pid in _descendants(table, self.root):
            _, start, cpu = table[pid]
            key = (pid, start)
            prev = self._last.get(key, 0 if count else cpu)
            if count and cpu > prev:
                cat = _category(pid, self.root)
                self.by_category[cat] = self.by_category.get(cat, 0.0) + (cpu - prev) / _TICK
            self._last[key] = cpu

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> "CpuMonitor":
        self._sample(count=False)
        self.t0, (self.busy0, self.steal0) = time.perf_counter(), _system_cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        wall = time.perf_counter() - self.t0
        busy, steal = _system_cpu()
        mine = sum(self.by_category.values())
        others = max(0.0, busy - self.busy0 - mine)
        self.result = {"wall_s": wall, "my_cpu_s": mine, "my_cores": mine / wall,
                       "my_cores_by_category": {k: v / wall for k, v in sorted(self.by_category.items())},
                       "others_cpu_s": others, "others_cores": others / wall,
                       "steal_cores": (steal - self.steal0) / wall,
                       "load_avg_end": [round(x, 2) for x in os.getloadavg()]}


def wait_quiet(max_wait_s: float, threshold_cores: float = 0.3, window_s: float = 5.0) -> dict[str, float]:
    """Wait (at most max_wait_s) until other tenants use less than threshold_cores over a
    window, so a wall-clock measurement is not someone else's test run. Returns what it saw."""
    t0, last = time.perf_counter(), math.nan
    while True:
        with CpuMonitor() as m:
            time.sleep(window_s)
        last = m.result["others_cores"]
        waited = time.perf_counter() - t0
        if last < threshold_cores or waited >= max_wait_s:
            return {"waited_s": round(waited, 1), "others_cores_before": round(last, 3),
                    "quiet": last < threshold_cores}
