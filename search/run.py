"""`python -m search.run`: one search, from the command line to the Pareto front in MLflow.

Order matters: search.preflight checks everything that can be known up front before any data
is decoded, any baseline trained, Ray started or MLflow run created, so bad input leaves nothing
behind (one line, exit 2). Once the parent run exists, whatever stops the search ends it FAILED
(or KILLED) with the reason.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mlflow_config import environment
from mlflow_config.secrets import redact
from search.cluster import ClusterError
from search.config import SearchConfig, load_config, rewind_points
from search.results.cli_kit import printed_logs, run_main
from trainables.data import DataError

# By name, not __name__: under `python -m search.run` that is "__main__", outside the project's loggers.
logger = logging.getLogger("search.run")


def main(argv: list[str] | None = None, prog: str = "python -m search.run") -> int:
    with printed_logs():  # the progress lines the command prints
        return run_main(lambda: _naming_the_data_flag(lambda: run_search(load_config(argv, prog))),
                        usage_errors=(DataError, ClusterError))


def _naming_the_data_flag(body):
    """A problem with the data is the --data-dir's (or --dataset's): the one line names the flag."""
    try:
        return body()
    except DataError as exc:
        text = str(exc)
        if text.startswith("--"):
            raise
        raise DataError(f"--data-dir: {text}") from None


def run_search(cfg: SearchConfig, points: list[dict] | None = None) -> int:
    """Run (or resume) one search. `points`: Optuna parameter sets to enqueue first, in order,
    instead of the default seeding (one trial per method, then the article's recipe). Progress
    goes to this module's logger and those of trainables (`search.results.cli_kit.printed_logs`
    prints them, as the command line does)."""
    from mlflow_config import tracking
    from search import preflight
    from search.resume import load_record, with_budget

    home = cfg.home.expanduser().absolute()
    with tracking.credentials_restored():
        if cfg.resume:
            rec = load_record(home, Path(cfg.resume).name, given=cfg)  # a name, or its Ray storage path
            preflight.check_resume(rec, home, cfg.address, cfg.budget)
            if cfg.budget and cfg.budget != rec.config.budget:
                logger.info(f"search {rec.name}: budget {rec.config.budget} -> {cfg.budget} trials")
                rec = with_budget(home, rec, cfg.budget)
            return _run(Search(rec.config, home, *_prepare(rec.config, home)), resume=rec, address=cfg.address)
        name = cfg.name or f"{cfg.dataset}-{datetime.now():%Y%m%d-%H%M%S}"
        preflight.check_search(cfg, home, name, tracking.resolve_tracking_uri(cfg.tracking_uri, home))
        if cfg.checkpoint is not None and cfg.rewind_checkpoint is None:
            logger.info("lottery: left out (it rewinds to early-training weights, which --checkpoint lacks; give the "
                       "model's weights at initialization with --rewind-checkpoint FILE to search it)")
        return _run(Search(cfg, home, *_prepare(cfg, home)), name=name, points=points)


@dataclass
class Search:
    """One search as it runs: its settings, where it lives, its data and dense baseline (with the
    dense model's metrics), and once started its record and MLflow client."""

    cfg: SearchConfig
    home: Path
    data: Any
    baseline: Any
    dense: dict[str, float] = field(default_factory=dict)
    rec: Any = None  # search.resume.SearchRecord
    client: Any = None  # the MLflow client of rec.tracking_uri


def _optuna_url(cfg: SearchConfig, home: Path) -> str:
    return cfg.optuna_storage or f"sqlite:///{home / 'optuna.db'}"


def _prepare(cfg: SearchConfig, home: Path):
    from trainables.baseline import get_baseline
    from trainables.data import load_dataset

    data = load_dataset(cfg.dataset, cfg.data_dir, home, cfg.data_seed, cfg.val_fraction, cfg.test_fraction,
                        cfg.train_subset, cfg.image_size, cfg.normalize)
    logger.info(f"data: {cfg.dataset} train={len(data.train)} val={len(data.val)} test={len(data.test)} "
               f"images {data.in_channels}x{data.image_size}x{data.image_size}")
    return data, get_baseline(baseline_spec(cfg, len(data.train)), data, home)


def baseline_spec(cfg: SearchConfig, n_train: int):
    """The dense baseline's recipe (on `n_train` training images): what trains it, and what keys
    its cache entry."""
    from trainables.baseline import BaselineSpec

    if cfg.checkpoint is not None:  # nothing trained: the file's content keys the cache
        return BaselineSpec(cfg.model, cfg.epochs[0], cfg.baseline_lr, cfg.batch_size, cfg.seed, cfg.augment_on,
                            (0,) if cfg.rewind_checkpoint else (), cfg.schedule, str(cfg.checkpoint),
                            str(cfg.rewind_checkpoint or ""))
    return BaselineSpec(cfg.model, cfg.epochs[0], cfg.baseline_lr, cfg.batch_size, cfg.seed, cfg.augment_on,
                        rewind_points(cfg, n_train), cfg.schedule)


def _dense_metrics(cfg: SearchConfig, data, baseline) -> dict[str, float]:
    from trainables import compress
    from trainables.baseline import normalizer
    from trainables.measure import TEST_ACC, VAL_ACC, count_flops, count_params, latency_ms

    model = baseline.build(cfg.model, data).eval()
    example = normalizer(data, False)(data.val.x[:1])
    size = compress.size_bytes(compress.encode(baseline.state, {}))
    n = count_params(model)
    return {VAL_ACC: baseline.metrics[VAL_ACC], TEST_ACC: baseline.metrics[TEST_ACC],
            "size_bytes": size, "params": n, "nonzero_params": n, "flops": count_flops(model, example),
            "latency_ms": latency_ms(model, example, cfg.latency_batch)}


def _run(search: Search, name: str | None = None, resume=None, address: str | None = None,
         points: list[dict] | None = None) -> int:
    import ray

    from mlflow_config import tracking
    from search import cluster
    from search.resume import SearchRecord, reconcile, save_record
    from search.seeding import initial_points
    from trainables.models import factory_code

    cfg, home, data, baseline = search.cfg, search.home, search.data, search.baseline
    search.dense = dense = _dense_metrics(cfg, data, baseline)

    code = factory_code(cfg.model)
    started_ray = cluster.start_ray(address or cfg.address, [str(code)] if code else None)
    try:
        cluster.check_feasible(cfg.cpus_per_trial, cfg.gpus_per_trial)  # a joined cluster: before any run
        if resume is None:
            tracking_uri = tracking.resolve_tracking_uri(cfg.tracking_uri, home)
            client = tracking.client(tracking_uri)
            # Only a tracking server picks an artifact root itself; a store MLflow opens directly
            # (sqlite, postgresql, mysql, a path) would default to ./mlruns in the driver's cwd.
            local_store = not tracking_uri.startswith(("http://", "https://", "databricks"))
            exp_id = tracking.ensure_experiment(client, cfg.experiment_name,
                                                tracking.default_artifact_location(home) if local_store else None)
            parent = tracking.start_run(client, exp_id, name, tags={"search": name, "role": "search"})
            rec = SearchRecord(name, cfg, tracking_uri, exp_id, parent, _optuna_url(cfg, home))
            done, points = 0, initial_points(cfg) if points is None else [dict(p) for p in points]
        else:
            rec, done, points = resume, None, []
            client = tracking.client(rec.tracking_uri)
        search.rec, search.client = rec, client
        # A resume that fails leaves a finished search as it was (its failure is a tag, not its status).
        finished_before = resume is not None and client.get_run(rec.parent_run_id).info.status == "FINISHED"
        try:
            if done is None:
                done = reconcile(rec, client)
                client.update_run(rec.parent_run_id, status="RUNNING")
                logger.info(f"search {rec.name}: resuming with {done} of {cfg.budget} trials done")
            else:
                tracking.log_params(client, parent, {**cfg.as_params(), "name": name, "baseline_key": baseline.key,
                                                     # search.results.compare: how much one image moves val_acc
                                                     "val_images": len(data.val), "test_images": len(data.test)})
                tracking.log_metrics(client, parent, {f"baseline_{k}": v for k, v in dense.items()})
                save_record(home, rec)
                logger.info(f"search {name}: {cfg.budget} trials of {', '.join(cfg.methods)}; MLflow run {parent} "
                           f"in experiment {cfg.experiment_name!r}")
            start = time.perf_counter()
            if done < cfg.budget:
                _tune(search, done, points, fresh=resume is None)
            return _finish(search, time.perf_counter() - start)
        except BaseException as exc:
            # Whatever stops the search ends its parent run with the reason, never leaves it RUNNING.
            stopped = isinstance(exc, (KeyboardInterrupt, SystemExit))
            reason = redact(f"{type(exc).__name__}: {exc}")[:1000]
            with contextlib.suppress(Exception):  # the store itself may be what failed: keep that error
                if finished_before:
                    client.update_run(rec.parent_run_id, status="FINISHED")
                    tracking.set_tags(client, rec.parent_run_id, {"last_resume_failure": reason})
                else:
                    tracking.finish_run(client, rec.parent_run_id, ok=False, killed=stopped, reason=reason)
            raise
    finally:
        if started_ray:
            ray.shutdown()


def _sensitivity_caps(search: Search) -> dict[str, float] | None:
    """Per-layer upper bounds from the sensitivity scan (--sensitivity-drop), or None when off."""
    cfg = search.cfg
    if not cfg.sensitivity_drop:
        return None
    from trainables.sensitivity import get_sensitivity

    sens = get_sensitivity(search.baseline, cfg.model, search.data, search.home, seed=cfg.seed)
    caps = {layer: sens.cap(layer, cfg.sensitivity_drop) for layer in sens.val_acc}
    logger.info("sensitivity: upper bounds (largest ratio costing <= "
               f"{cfg.sensitivity_drop:g} val accuracy alone): " + ", ".join(f"{k} {v:g}" for k, v in caps.items()))
    return caps


def _tune(search: Search, done: int, points, fresh: bool = True) -> None:

    from ray import tune

    from search import cluster
    from search.results.report import collect_points
    from search.results.ui import ui_base
    from search.space import make_spec, space_fn
    from search.tune import VAL_ACC, PrivateRDBStorage, Progress, RecordingOptunaSearch, RunContext, make_sampler, trial_entry
    from trainables.baseline import normalizer

    cfg, rec, data, baseline, dense = search.cfg, search.rec, search.data, search.baseline, search.dense
    metric = cfg.objective_metric
    model, example = baseline.build(cfg.model, data), normalizer(data, False)(data.val.x[:1])
    spec = make_spec(cfg, model, example, caps=_sensitivity_caps(search))
    _report_graph(search, model, example)
    if fresh and cfg.screen:  # a resume's study already holds what the first start enqueued
        points = [*(points or []), *_screened_points(search, spec, len(points or []))]
    searcher = RecordingOptunaSearch(
        space=space_fn(spec), metric=[VAL_ACC, metric], mode=["max", "min"], sampler=make_sampler(cfg, done),
        storage=PrivateRDBStorage(rec.optuna_url), study_name=rec.name, points_to_evaluate=points or None)
    searcher.mlflow_ui = (ui_base(rec.tracking_uri), rec.experiment_id)
    run_ctx = RunContext(rec.tracking_uri, rec.experiment_id, rec.parent_run_id, rec.name,
                         max(1, int(cfg.cpus_per_trial)), cfg.gpus_per_trial > 0)
    trainable = tune.with_resources(
        tune.with_parameters(trial_entry, data=data, baseline=baseline, run_ctx=run_ctx),
        {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial})
    storage = _storage_path(cfg, search.home)
    prior = []  # a resume's progress lines count the front from the trials already finished
    if done:

        from mlflow_config import tracking

        runs = tracking.child_runs(search.client, rec.experiment_id, rec.parent_run_id)
        prior = collect_points(runs, metric, dense[metric])
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=cfg.budget - done, reuse_actors=True,
                                    max_concurrent_trials=cfg.max_concurrent or None),
        run_config=tune.RunConfig(
            name=rec.name if done == 0 else f"{rec.name}-resume-{done}", storage_path=storage, verbose=0,
            # Retries are for workers that died; a trial that raises reports its failure instead.
            failure_config=tune.FailureConfig(max_failures=2),
            callbacks=[Progress(cfg.budget, metric, dense[metric], done=done, points=prior),
                       cluster.stop_when_infeasible(cfg.cpus_per_trial, cfg.gpus_per_trial)]))
    # A failed trial reports no objective; without this Tune would abort the whole search.
    try:
        with environment.overridden({"TUNE_DISABLE_STRICT_METRIC_CHECKING": "1"}):
            tuner.fit()
    except Exception as exc:  # Tune may wrap what a callback raised; the user needs the reason only
        reason = _cause(exc, cluster.ClusterError)
        if reason is not None:
            raise cluster.ClusterError(str(reason)) from None
        raise


def _screened_points(search: Search, spec, enqueued: int) -> list[dict]:
    """--screen: score random candidates cheaply, keep the best of their front as the first full
    trials (after the default seeding, within the budget's enqueued share of three quarters),
    and record every score in the search's run for the rank correlation at the end."""

    from mlflow_config import tracking
    from mlflow_config.artifacts import SCREEN_FILE, log_json
    from search import screening

    cfg, rec = search.cfg, search.rec
    start = time.perf_counter()
    candidates = screening.screen(spec, search.data, search.baseline, cfg.screen, cfg.seed)
    chosen = screening.select(candidates, screening.keep_count(cfg.budget, cfg.screen_keep, enqueued))
    wall = time.perf_counter() - start
    client = search.client
    log_json(client, rec.parent_run_id, screening.as_records(chosen, candidates), None, SCREEN_FILE)
    tracking.log_metrics(client, rec.parent_run_id, {"screen_scored": len(candidates),
                                                      "screen_enqueued": len(chosen), "screen_wall_s": wall})
    logger.info(f"screening: {len(candidates)} candidates scored in {wall:.0f}s; the first {len(chosen)} trials "
               "fine-tune the best of their front")
    return [c.params for c in chosen]


def _screen_correlation(search: Search, study) -> None:
    """How well the screen ranked what it enqueued: Spearman of screened vs fine-tuned val accuracy."""
    rec, client = search.rec, search.client
    if not search.cfg.screen:
        return
    from mlflow_config import tracking
    from mlflow_config.artifacts import SCREEN_FILE, load_json
    from search import screening

    try:
        records = load_json(client, rec.parent_run_id, SCREEN_FILE)
    except Exception:  # noqa: BLE001 - a search resumed from before screening ran has none
        return
    rho, pairs = screening.rank_correlation(records["candidates"], study.get_trials(deepcopy=False))
    if pairs >= 3:
        tracking.log_metrics(client, rec.parent_run_id, {"screen_spearman": rho, "screen_pairs": pairs})
    logger.info(f"screening: rank correlation (Spearman) of screened vs fine-tuned val accuracy over {pairs} trials: "
               + (f"{rho:.2f}" if pairs >= 3 else "too few to say"))


def _report_graph(search: Search, model, example) -> None:
    """What the dependency graph made of the model, in the log and as tags of the search's run:
    its classifier, and the layers fpgm and hybrid leave dense because it cannot prune them safely."""

    from pruners.graph import layer_plan

    plan = layer_plan(model, example)
    dense = "; ".join(f"{n} ({why})" for n, why in plan.dense.items()) or "none"
    logger.info(f"dependency graph: {len(plan.order)} prunable layers, classifier {', '.join(sorted(plan.classifiers))}; "
               f"left dense by the filter methods (fpgm, filter taylor, hybrid): {dense}")
    client, run_id = search.client, search.rec.parent_run_id
    client.set_tag(run_id, "graph_classifier", ",".join(sorted(plan.classifiers)))
    client.set_tag(run_id, "graph_left_dense", ",".join(plan.dense) or "none")


def _storage_path(cfg: SearchConfig, home: Path) -> str:
    """Ray Tune wants an absolute local path (or a URI such as s3://)."""
    if not cfg.storage_path:
        return str(home / "ray")
    if "://" in cfg.storage_path and not cfg.storage_path.startswith("file://"):
        return cfg.storage_path
    return str(Path(cfg.storage_path.removeprefix("file://")).expanduser().absolute())


def _describe_study(study, search: Search) -> None:
    """What optuna-dashboard shows beside the study: the objectives' meaning and the search's run."""
    from search.results.ui import run_link, ui_base

    cfg, rec = search.cfg, search.rec
    study.set_user_attr("objectives", f"maximize val_acc (validation accuracy of the pruned, fine-tuned model); "
                                      f"minimize {cfg.objective_metric} (the {cfg.objective} objective)")
    study.set_user_attr("mlflow_search_run", run_link(rec.experiment_id, rec.parent_run_id, ui_base(rec.tracking_uri)))


def _most_common_failure(trials) -> tuple[str, int]:
    """The most frequent first line of the failed trials' reasons, and how many trials it hit."""
    from collections import Counter

    reasons = Counter((str(t.user_attrs.get("failure_reason") or "no reason recorded").strip().splitlines() or [""])[0]
                      for t in trials)
    return reasons.most_common(1)[0]


def _cause(exc: BaseException | None, kind: type) -> BaseException | None:
    while exc is not None and not isinstance(exc, kind):
        exc = exc.__cause__ or exc.__context__
    return exc


def _finish(search: Search, wall: float) -> int:
    import optuna

    from mlflow_config import tracking
    from search.results import report
    from search.results.ui import runs_link, ui_base
    from search.resume import counted_trials, mark_orphans_failed

    cfg, rec, client, dense = search.cfg, search.rec, search.client, search.dense
    study = optuna.load_study(study_name=rec.name, storage=rec.optuna_url)
    counted = counted_trials(study)
    done = len(counted)
    if done < cfg.budget:
        tracking.finish_run(client, rec.parent_run_id, ok=False, reason=f"interrupted after {done} of {cfg.budget} trials",
                            killed=True)
        logger.warning(f"\nsearch {rec.name} interrupted: {done} of {cfg.budget} trials done. Resume it with:\n"
                       f"  python -m search.run --home {cfg.home} --resume {rec.name}")
        return 130
    mark_orphans_failed(client, tracking.child_runs(client, rec.experiment_id, rec.parent_run_id))
    failed = [t for t in counted if t.state == optuna.trial.TrialState.FAIL]
    if failed and len(failed) == done:
        reason, hits = _most_common_failure(failed)
        tracking.log_metrics(client, rec.parent_run_id, {"trials_finished": 0, "trials_failed": len(failed)})
        tracking.finish_run(client, rec.parent_run_id, ok=False, reason=f"every trial failed: {reason}")
        logger.warning(f"\nsearch {rec.name}: all {done} trials failed; the most common reason ({hits} of {done}): {reason}")
        return 1
    _describe_study(study, search)
    _screen_correlation(search, study)
    rows = report.finalize(client, rec.experiment_id, rec.parent_run_id, cfg.objective_metric, dense,
                           f"{cfg.model} on {cfg.dataset}: {rec.name}", failed=len(failed))
    tracking.log_metrics(client, rec.parent_run_id, {"search_wall_s": wall})
    tracking.finish_run(client, rec.parent_run_id, ok=True)
    logger.info(f"\nsearch {rec.name} done in {wall:.0f}s; {len(rows)} Pareto points.")
    if failed:
        reason, hits = _most_common_failure(failed)
        logger.warning(f"{len(failed)} of {done} trials failed (most common, {hits}x: {reason[:200]}); each failed trial's "
                       "reason is its MLflow tag failure_reason")
    remote = rec.tracking_uri.startswith(("http://", "https://"))
    start = "" if remote else f"  prune-search ui --home {cfg.home}\n"
    logger.info(f"Look at the results (README: Looking at results):\n{start}"
               f"  MLflow UI: {runs_link(ui_base(rec.tracking_uri), rec.experiment_id)}\n"
               f"    run {rec.name}: pareto.html (hover the points), pareto_table.json; trials: tags.pareto = 'true'\n"
               f"  optuna-dashboard (Pareto front, history, hyperparameter importances): "
               f"prune-search dashboard --home {cfg.home}" + (" --optuna-storage URL" if cfg.optuna_storage else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
