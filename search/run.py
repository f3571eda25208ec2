"""`python -m search.run`: one search, from the command line to the Pareto front in MLflow.

Order matters: everything that can be wrong with the input is checked before Ray starts or an
MLflow run exists, so bad input leaves nothing behind (one line, exit 2).
"""
from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

from search.config import ConfigError, SearchConfig, load_config
from trainables.data import DataError


class ClusterError(Exception):
    """Ray cluster cannot be reached or started."""


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = load_config(argv)
        return run_search(cfg)
    except (ConfigError, DataError, ClusterError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # tracking errors come from mlflow_config; keep the import lazy
        from mlflow_config.tracking import TrackingError

        if isinstance(exc, TrackingError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise


def run_search(cfg: SearchConfig, log=print) -> int:
    import optuna

    from mlflow_config import tracking
    from trainables.baseline import BaselineSpec, get_baseline
    from trainables.data import load_dataset

    home = cfg.home.resolve()
    name = cfg.name or f"{cfg.dataset}-{datetime.now():%Y%m%d-%H%M%S}"
    tracking_uri = tracking.resolve_tracking_uri(cfg.tracking_uri, home)
    tracking.check_reachable(tracking_uri)
    optuna_url = f"sqlite:///{home / 'optuna.db'}"
    if (home / "optuna.db").exists() and name in optuna.study.get_all_study_names(optuna_url):
        raise ConfigError(f"--name: search {name!r} already exists in {home / 'optuna.db'}; choose another name")

    data = load_dataset(cfg.dataset, cfg.data_dir, home, cfg.seed, cfg.val_fraction, cfg.test_fraction,
                        cfg.train_subset)
    log(f"data: {cfg.dataset} train={len(data.train)} val={len(data.val)} test={len(data.test)} "
        f"images {data.in_channels}x{data.image_size}x{data.image_size}")
    base_epochs, _ = cfg.epochs
    spec = BaselineSpec(cfg.model, base_epochs, cfg.baseline_lr, cfg.batch_size, cfg.seed, cfg.augment,
                        tuple(sorted(set(cfg.lottery_rewind_iter) | {0})))
    baseline = get_baseline(spec, data, home, log=log)
    return _search(cfg, name, home, tracking_uri, optuna_url, data, baseline, log)


def _dense_metrics(cfg: SearchConfig, data, baseline) -> dict[str, float]:
    from trainables import compress
    from trainables.baseline import normalizer
    from trainables.measure import count_flops, count_params, latency_ms

    model = baseline.build(cfg.model, data).eval()
    example = normalizer(data, False)(data.val.x[:1])
    size = compress.size_bytes(compress.encode(baseline.state, {}))
    n = count_params(model)
    return {"val_acc": baseline.metrics["val_acc"], "test_acc": baseline.metrics["test_acc"],
            "size_bytes": size, "params": n, "nonzero_params": n, "flops": count_flops(model, example),
            "latency_ms": latency_ms(model, example, cfg.latency_batch)}


def _start_ray(cfg: SearchConfig) -> bool:
    """Returns True when this call started Ray (and so must shut it down)."""
    import os

    import ray

    if ray.is_initialized():
        return False
    address = cfg.address or os.environ.get("RAY_ADDRESS")
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot reach Ray at {address or 'local'}: {exc}") from None
    return True


def _search(cfg, name, home: Path, tracking_uri, optuna_url, data, baseline, log) -> int:
    import ray
    from mlflow.tracking import MlflowClient
    from optuna.storages import RDBStorage
    from ray import tune

    from mlflow_config import tracking
    from search import report
    from search.seeding import initial_points
    from search.space import make_spec, space_fn
    from search.tune import OBJECTIVE_ACC, Progress, RecordingOptunaSearch, RunContext, make_sampler, trial_entry

    dense = _dense_metrics(cfg, data, baseline)
    started_ray = _start_ray(cfg)
    try:
        client = MlflowClient(tracking_uri)
        default_artifacts = None if "://" in tracking_uri and not tracking_uri.startswith("sqlite") else \
            tracking.default_artifact_location(home)
        exp_id = tracking.ensure_experiment(client, cfg.experiment_name, default_artifacts)
        parent = tracking.start_run(client, exp_id, name, tags={"search": name, "role": "search"})
        tracking.log_params(client, parent, {**cfg.as_params(), "name": name, "baseline_key": baseline.key})
        tracking.log_metrics(client, parent, {f"baseline_{k}": v for k, v in dense.items()})
        log(f"search {name}: {cfg.budget} trials of {', '.join(cfg.methods)}; MLflow run {parent} "
            f"in experiment {cfg.experiment_name!r}")

        spec = make_spec(cfg, baseline.build(cfg.model, data))
        metric = cfg.objective_metric
        searcher = RecordingOptunaSearch(
            space=space_fn(spec), metric=[OBJECTIVE_ACC, metric], mode=["max", "min"], sampler=make_sampler(cfg),
            storage=RDBStorage(optuna_url), study_name=name, points_to_evaluate=initial_points(cfg) or None)
        threads = max(1, int(cfg.cpus_per_trial))
        run_ctx = RunContext(tracking_uri, exp_id, parent, name, threads, cfg.gpus_per_trial > 0)
        trainable = tune.with_resources(
            tune.with_parameters(trial_entry, data=data, baseline=baseline, run_ctx=run_ctx),
            {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial})
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=cfg.budget, reuse_actors=True,
                                        max_concurrent_trials=cfg.max_concurrent or None),
            run_config=tune.RunConfig(name=name, storage_path=str(home / "ray"), verbose=0,
                                      callbacks=[Progress(cfg.budget, metric, dense[metric], log)]))
        start = time.perf_counter()
        tuner.fit()
        wall = time.perf_counter() - start
        rows = report.finalize(client, exp_id, parent, metric, dense,
                               f"{cfg.model} on {cfg.dataset}: {name}", log)
        tracking.log_metrics(client, parent, {"search_wall_s": wall})
        tracking.finish_run(client, parent, ok=True)
    finally:
        if started_ray:
            ray.shutdown()
    log(f"\nsearch {name} done in {wall:.0f}s; {len(rows)} Pareto points.")
    ui_uri = tracking_uri
    log(f"Open the fronts in the MLflow UI:\n  mlflow ui --backend-store-uri {ui_uri} --host 127.0.0.1 --port 5000\n"
        f"  then experiment {cfg.experiment_name!r}, run {name}; filter children with: tags.pareto = 'true'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
