"""Ray Tune + Optuna wiring: the trial entry point, the multi-objective searcher, progress.

The trial entry opens the trial's MLflow child run, runs `trainables.trial.run_trial` (which
knows nothing of Ray or MLflow), logs params, metrics and artifacts, and reports to Tune.
"""
from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import ray
import torch
from mlflow.tracking import MlflowClient
from ray import tune
from ray.tune.search.optuna import OptunaSearch

from mlflow_config import artifacts, tracking
from mlflow_config.secrets import redact
from search import private_apis
from search.config import SearchConfig
from search.results.pareto import Point, front
from trainables.measure import VAL_ACC
from trainables.trial import run_trial
from trainables.trial_config import OPTUNA_TRIAL, SPARSITY_PREFIX, TrialConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    """What every trial needs to record itself in MLflow (picklable, shipped once)."""

    tracking_uri: str  # may carry user:password@: it lives in Ray's object store only, never on disk
    experiment_id: str
    parent_run_id: str
    search_name: str
    threads: int
    use_gpu: bool


def trial_entry(config: dict[str, Any], data, baseline, run_ctx: RunContext) -> None:
    """The Ray Tune function trainable. One MLflow child run per Optuna trial.

    A trial that raises (or diverges) is reported as a result carrying `failure_reason`, not
    raised: Tune then does not retry it (retries are for dead workers), Optuna is told FAIL
    and the MLflow run is FAILED with the reason."""
    torch.set_num_threads(run_ctx.threads)  # no oversubscription: threads = CPUs of the trial
    device = "cuda" if run_ctx.use_gpu and torch.cuda.is_available() else "cpu"
    client = tracking.client(run_ctx.tracking_uri)  # basic auth from the URI, any node
    finished = _finished_run(client, run_ctx, config.get(OPTUNA_TRIAL))
    if finished is not None:  # a retry after the run had finished: report it, don't redo it
        tune.report({**finished.data.metrics, "mlflow_run_id": finished.info.run_id})
        return
    ray_trial_id = tune.get_context().get_trial_id() or "local"
    tc = TrialConfig.from_flat(config)
    run_id = tracking.start_run(
        client, run_ctx.experiment_id, name=f"{tc.method}-{ray_trial_id if tc.optuna_trial is None else tc.optuna_trial}",
        parent_run_id=run_ctx.parent_run_id,
        tags={"method": tc.method, "search": run_ctx.search_name, "ray_trial_id": ray_trial_id, "pareto": "false",
              "ray_node_id": ray.get_runtime_context().get_node_id()})
    tracking.log_params(client, run_id, tc.as_params())
    try:
        outcome = run_trial(tc, data, baseline, device=device)
        tracking.log_metrics(client, run_id, outcome.metrics)
        # One sparsity param per layer even where the method did not sample it (achieved value).
        tracking.log_params(client, run_id, {f"{SPARSITY_PREFIX}{k}": v for k, v in outcome.effective_ratios.items()
                                             if k not in tc.ratios})
        tracking.log_metrics(client, run_id, {f"achieved_sparsity.{k}": v for k, v in outcome.layer_sparsity.items()})
        tracking.log_metrics(client, run_id, {f"removed_filters.{k}": v for k, v in outcome.removed_filters.items()})
        if outcome.notes:
            tracking.set_tags(client, run_id, {"notes": "; ".join(outcome.notes)[:5000]})
        artifacts.log_tensors(client, run_id, outcome.masks, artifacts.MASKS_DIR, artifacts.MASKS_FILE)
        artifacts.log_tensors(client, run_id, outcome.encoded, artifacts.WEIGHTS_DIR, artifacts.WEIGHTS_FILE)
        if outcome.kept_channels:
            artifacts.log_json(client, run_id, outcome.kept_channels, artifacts.WEIGHTS_DIR, artifacts.KEPT_CHANNELS_FILE)
    except Exception as exc:  # noqa: BLE001 - any trial error is recorded, the search goes on
        reason = f"{type(exc).__name__}: {exc}"
        tracking.finish_run(client, run_id, ok=False, reason=reason)
        tune.report({"failure_reason": reason[:1000], "mlflow_run_id": run_id})
        return
    except BaseException:
        tracking.finish_run(client, run_id, ok=False, reason="interrupted")
        raise
    tracking.finish_run(client, run_id, ok=True)
    tune.report({**outcome.metrics, "mlflow_run_id": run_id})


def _finished_run(client: MlflowClient, run_ctx: RunContext, optuna_trial):
    if optuna_trial is None:
        return None
    runs = client.search_runs(
        [run_ctx.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run_ctx.parent_run_id}' and params.optuna_trial = '{optuna_trial}' "
                      "and attributes.status = 'FINISHED'", max_results=1)
    return runs[0] if runs else None


class RecordingOptunaSearch(OptunaSearch):
    """OptunaSearch that links each Optuna trial to its Ray trial and MLflow run, and tells
    FAIL (not COMPLETE) for a result with a missing or non-finite objective: otherwise the
    Optuna trial stays RUNNING forever (Optuna rejects NaN, Ray only warns)."""

    def _setup_study(self, mode):
        super()._setup_study(mode)
        # optuna-dashboard labels its axes with these names (otherwise "0" and "1").
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        study = private_apis.searcher_study(self)
        if study is not None and study.metric_names != metrics:
            with warnings.catch_warnings():  # "experimental" since Optuna 3.2, and stable in use
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(metrics)

    def suggest(self, trial_id: str) -> dict | None:
        config = super().suggest(trial_id)
        if config is not None:
            # Links the Ray trial and its MLflow run to this Optuna trial (resume reconciles on it).
            config[OPTUNA_TRIAL] = private_apis.searcher_trial(self, trial_id).number
        return config

    # (UI base URL, experiment id) for each trial's `mlflow_run` link, shown by optuna-dashboard.
    mlflow_ui: tuple[str, str] | None = None

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        ot_trial = private_apis.searcher_trial(self, trial_id)
        completed = private_apis.searcher_completed(self)
        if ot_trial is not None and trial_id not in completed:
            ot_trial.set_user_attr("ray_trial_id", trial_id)
            if result and result.get("mlflow_run_id"):
                ot_trial.set_user_attr("mlflow_run_id", result["mlflow_run_id"])
                if self.mlflow_ui is not None:
                    from search.results.ui import run_link

                    base, experiment_id = self.mlflow_ui
                    ot_trial.set_user_attr("mlflow_run", run_link(experiment_id, result["mlflow_run_id"], base))
            metrics = self.metric if isinstance(self.metric, list) else [self.metric]
            values = [None if not result else result.get(m) for m in metrics]
            if result and any(v is None or not math.isfinite(float(v)) for v in values):
                reason = result.get("failure_reason") or f"objective missing or not finite: {values}"
                ot_trial.set_user_attr("failure_reason", reason)
                private_apis.searcher_study(self).tell(ot_trial, state=optuna.trial.TrialState.FAIL)
                completed.add(trial_id)
                return
        super().on_trial_complete(trial_id, result=result, error=error)


class PrivateRDBStorage(optuna.storages.RDBStorage):
    """Ray Tune pickles the searcher, and with it this storage, into its experiment state on disk
    (tuner.pkl, searcher-state-*.pkl). That copy is never loaded back (a resume opens the study
    anew from the search record), so it is written without the URL's password."""

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["url"] = redact(state["url"])
        return state


def sampler_seed(seed: int, trials_before: int) -> int:
    """A resumed search must not replay its first draws: the sampler's seed moves on with the
    number of trials the study already holds (still reproducible from the same history)."""
    return (seed + trials_before * 1_000_003) % 2**32


def make_sampler(cfg: SearchConfig, trials_before: int = 0) -> optuna.samplers.BaseSampler:
    import warnings

    seed = sampler_seed(cfg.seed, trials_before)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if cfg.sampler == "tpe":
            # constant_liar keeps concurrent trials from all sampling the same point.
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, constant_liar=True)
        if cfg.sampler == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(20, cfg.budget // 4)))
        if cfg.sampler == "gp":
            # Gaussian process with log-EHVI for two objectives. It models the settings every
            # trial shares (method, finetune_lr) jointly; a method's own settings and layer ratios
            # exist only in some trials and are sampled independently (hence no warning each time).
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=max(2, min(10, cfg.budget // 4)),
                                             warn_independent_sampling=False)
        return optuna.samplers.RandomSampler(seed=seed)


class Progress(tune.Callback):
    """One line per finished trial: i of N, its numbers, the front size so far and the time left.
    On a resume, `done` and `points` carry the trials finished before, so the counts go on.
    The lines go to this module's logger (on the driver: Tune runs its callbacks there)."""

    def __init__(self, budget: int, objective_metric: str, dense_cost: float, done: int = 0,
                 points: list[Point] | None = None):
        self.budget, self.metric, self.dense_cost = budget, objective_metric, dense_cost
        self.points: list[Point] = list(points or [])
        self.done = self.done_at_start = done
        self.start = time.perf_counter()

    def _timing(self) -> str:
        elapsed = time.perf_counter() - self.start
        finished_here = self.done - self.done_at_start
        left = max(0, self.budget - self.done)
        eta = f", ~{elapsed / finished_here * left:.0f}s left" if finished_here and left else ""
        return f"{elapsed:.0f}s elapsed{eta}"

    def on_trial_complete(self, iteration, trials, trial, **info):
        r = trial.last_result or {}
        self.done += 1
        if "failure_reason" in r:
            logger.info(f"[{self.done}/{self.budget}] {trial.config.get('method')} FAILED: {r['failure_reason'][:300]}")
        elif VAL_ACC in r and self.metric in r:
            self.points.append(Point(trial.trial_id, r[VAL_ACC], r[self.metric] / self.dense_cost,
                                     str(trial.config.get("method"))))
            logger.info(f"[{self.done}/{self.budget}] {trial.config.get('method'):9s} val_acc={r[VAL_ACC]:.4f} "
                        f"{self.metric}={r[self.metric]:.4g} ({r[self.metric] / self.dense_cost:.1%} of dense) "
                        f"cost {r.get('cost_s', 0):.1f}s | front: {_count(len(front(self.points)), 'point')} | "
                        f"{self._timing()}")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.done += 1
        logger.info(f"[{self.done}/{self.budget}] {trial.config.get('method')} FAILED: {_error_line(trial)}")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _error_line(trial) -> str:
    path = getattr(trial, "error_file", None)
    if path and Path(path).exists():
        lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip()]
        if lines:
            return lines[-1][:300]
    return "see the trial's error file"
