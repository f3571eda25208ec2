"""What every benchmark shares: where results and caches go, the machine it ran on, the commit it
measured, the JSON result file, and small numeric helpers. Rendering lives in bench/markdown.py
(each script owns its own section), searches in bench/searches.py, CPU accounting in bench/cpu.py.

Benchmarks are not tests: they measure, write `bench/results/<name>.json`, and replace their
own section of BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


class BenchParser(argparse.ArgumentParser):
    """The product's convention for bad input: one line naming the flag and value, exit 2 (not
    argparse's usage block)."""

    def error(self, message: str):
        print(f"error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


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


def code_commit(paths: Sequence[str]) -> str:
    """The last commit that changed the code a benchmark measures (with "+changes" when those
    paths differ from it in the work tree). A resumable benchmark keys its finished parts on this,
    not on HEAD: a later commit that leaves the measured code alone (README, other tools) measures
    the same thing, so a rerun on it reuses them and says which commit measured them."""
    try:
        last = subprocess.run(["git", "log", "-1", "--format=%h", "--", *paths], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *paths],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return (last or "unknown") + ("+changes" if dirty else "")


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
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "commit": git_commit()}


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


def write_json(name: str, payload: dict[str, Any], directory: Path | None = None) -> Path:
    """`directory`: bench/results unless given (a scratch folder for a smoke test)."""
    directory = directory or RESULTS
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)
    return path


def mean_std(xs: Sequence[float]) -> tuple[float, float]:
    xs = [float(x) for x in xs]
    if not xs:
        return math.nan, math.nan
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)



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


