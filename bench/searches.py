"""Searches and fixed trial sets for the benchmarks: one Ray cluster per script, a search run
in-process through the product's own entry and read back from MLflow, and trial configurations
sampled once from the product's search space."""
from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_HOME


def add_trial_set_args(ap) -> None:
    """The options overhead.py and concurrency.py share: which N fixed trials, how often, where."""
    ap.add_argument("--dataset", choices=("digits", "cifar10"), default="cifar10")
    ap.add_argument("--n", type=int, default=8, help="trial configurations (default 8; full setting 12)")
    ap.add_argument("--repeats", type=int, default=1, help="times each arm runs, alternating (default 1)")
    ap.add_argument("--config-seed", type=int, default=1234, help="seed of the random draw of the N configs")
    ap.add_argument("--home", type=Path, default=DEFAULT_HOME, help=f"work folder (default {DEFAULT_HOME})")
    ap.add_argument("--max-wait", type=float, default=60,
                    help="before each arm, wait up to this many seconds for other tenants to go quiet (default 60)")


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


def run_home(shared_home: Path, name: str) -> Path:
    """A fresh MLflow/Optuna home for one script run that shares the decoded datasets and
    trained baselines with every other run (only the first run pays for them)."""
    home = (shared_home / name).resolve()
    home.mkdir(parents=True, exist_ok=True)
    for sub in ("datasets", "baselines"):
        shared = shared_home.resolve() / sub
        shared.mkdir(parents=True, exist_ok=True)
        (home / sub).symlink_to(shared)
    return home


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
    from search.results.cli_kit import printed_logs
    from search.run import run_search as product_run_search

    cfg = load_config([*argv, "--home", str(home), "--name", name])
    log_path = log_path or (home / "logs" / f"{name}.log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as fh, contextlib.redirect_stdout(fh), printed_logs():  # progress lines: to the file
        t0, t0_epoch_ms = time.perf_counter(), time.time() * 1000
        code = product_run_search(cfg, points=points)
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


def load_data_and_baseline(argv: Sequence[str], home: Path, verbose: bool = False):
    """Exactly the data and baseline a search with these flags uses (same cache, same key);
    `verbose`: print the baseline's progress lines, as a search does."""
    from search.config import load_config
    from search.results.cli_kit import printed_logs
    from search.run import baseline_spec
    from trainables.baseline import get_baseline
    from trainables.data import load_dataset

    cfg = load_config([*argv, "--home", str(home)])
    data = load_dataset(cfg.dataset, cfg.data_dir, home.resolve(), cfg.data_seed, cfg.val_fraction, cfg.test_fraction,
                        cfg.train_subset, cfg.image_size, cfg.normalize)
    with printed_logs() if verbose else contextlib.nullcontext():
        baseline = get_baseline(baseline_spec(cfg, len(data.train)), data, home.resolve())
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

