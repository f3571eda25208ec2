"""Preflight: everything about a search that can be checked before anything starts.

Runs after the settings are parsed (search.config.validate) and before any data is decoded, any
baseline trained, Ray started or MLflow run created, and fails in seconds, never hangs:

- the data's split sizes and classes against the settings (file names only, nothing decoded);
- --home, --storage-path (and the CLIs' own destinations) writable, nothing created to find out;
- the MLflow store and the Optuna storage open and are what they claim to be (not corrupt);
- a given Ray address answers, and a trial fits on this machine when Ray runs locally.

Each failure is one ConfigError line naming the flag, the value and what is accepted (exit 2).
What cannot be known before the start (a worker dying, a node leaving) is handled while running.
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from mlflow_config import stores
from mlflow_config.secrets import redact
from search.config import ConfigError, SearchConfig, check_against_data
from search.results.cli_kit import check_writable

CONNECT_TIMEOUT_S = stores.CONNECT_TIMEOUT_S
SERVER_SCHEMES = ("http", "https")
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def check_search(cfg: SearchConfig, home: Path, name: str, tracking_uri: str) -> None:
    """A new search. `tracking_uri` is the resolved one (MLFLOW_TRACKING_URI > flag > --home)."""
    check_writable("--home", home)
    if cfg.storage_path and _is_local(cfg.storage_path):
        check_writable("--storage-path", Path(cfg.storage_path.removeprefix("file://")).expanduser())
    elif cfg.storage_path:
        check_remote_storage(cfg.storage_path)
    check_data(cfg)
    check_ray(cfg.address, cfg)  # before the stores: it needs neither MLflow's nor Optuna's (slow) imports
    check_tracking_store(tracking_uri, _tracking_flag(cfg))
    optuna_url = cfg.optuna_storage or f"sqlite:///{home / 'optuna.db'}"
    flag = "--optuna-storage" if cfg.optuna_storage else "--home"
    if name in study_names(optuna_url, flag):
        raise ConfigError(f"--name: search {name!r} already exists; choose another name, or --resume {name}")


def check_resume(rec, home: Path, address: str | None, budget: int = 0) -> None:
    """Resuming `rec` (search.resume.SearchRecord, its secrets restored); `budget`: a new budget
    asked for with --budget (0: the recorded one), never below the trials already counted."""
    import optuna

    from search.resume import counted_trials

    check_writable("--home", home)
    check_ray(address, rec.config)
    check_tracking_store(rec.tracking_uri, "--tracking-uri")
    if rec.name not in study_names(rec.optuna_url, "--optuna-storage"):
        raise ConfigError(f"--resume: the Optuna storage {redact(rec.optuna_url)} holds no study {rec.name!r}; "
                          "the search stopped before its first trial: run its original command again (a finished "
                          "baseline is reused from the cache)")
    if budget:
        done = len(counted_trials(optuna.load_study(study_name=rec.name, storage=rec.optuna_url)))
        if budget < done:
            raise ConfigError(f"--budget: {budget} is not accepted; search {rec.name!r} already ran {done} trials, "
                              f"expected at least {done} (or no --budget: its own, {rec.config.budget})")


def check_ray(address: str | None, cfg: SearchConfig) -> None:
    from search import cluster

    try:
        cluster.check_address(address or cfg.address)
        if cluster.given_address(address or cfg.address) is None:
            cluster.check_local_resources(cfg.cpus_per_trial, cfg.gpus_per_trial)
    except cluster.ClusterError as exc:
        raise ConfigError(str(exc)) from None


def check_data(cfg: SearchConfig) -> None:
    from trainables.data import plan_splits

    plan = plan_splits(cfg.dataset, cfg.data_dir, cfg.val_fraction, cfg.test_fraction, cfg.train_subset,
                       cfg.image_size)
    check_against_data(cfg, plan.n_train, plan.n_val, plan.classes)
    check_model(cfg, plan.in_channels, len(plan.classes), plan.image_size)


def check_model(cfg: SearchConfig, in_channels: int, num_classes: int, image_size: int) -> None:
    """The model builds, takes this data's images, gives one output per class, and the checkpoints
    fit it: known from the folder listing and one image header, before anything is decoded."""
    import torch

    from trainables.checkpoint import CheckpointError, check_fits
    from trainables.data import parse_normalize
    from trainables.models import ModelError, build_model

    if image_size == 0:
        raise ConfigError(f"--image-size: 0 is not accepted for {cfg.data_dir}, whose images are not square of "
                          "one size; expected --image-size N to resize them all to NxN")
    try:
        parse_normalize(cfg.normalize, in_channels)
    except ValueError:
        raise ConfigError(f"--normalize: {cfg.normalize!r} is not accepted for {in_channels}-channel images; "
                          f"expected auto, none, MEAN,STD or {in_channels} means then {in_channels} stds") from None
    shape = f"1x{in_channels}x{image_size}x{image_size}"
    try:
        model = _within(MODEL_PROBE_TIMEOUT_S, lambda: build_model(cfg.model, in_channels, num_classes, image_size),
                        f"--model: {cfg.model!r} did not build within {{seconds}} s; {MODEL_EXPECTED}")
        model.eval()
        for flag, path in (("--checkpoint", cfg.checkpoint), ("--rewind-checkpoint", cfg.rewind_checkpoint)):
            if path is not None:
                check_fits(model, path, flag)
    except (ModelError, CheckpointError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    try:
        with torch.no_grad():
            out = _within(MODEL_PROBE_TIMEOUT_S, lambda: model(torch.zeros(1, in_channels, image_size, image_size)),
                          f"--model: {cfg.model!r} did not return an output for one {shape} input within "
                          f"{{seconds}} s; {MODEL_EXPECTED}")
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's forward may raise anything
        raise ConfigError(f"--model: {cfg.model!r} fails on this data's input ({shape}: {type(exc).__name__}: "
                          f"{str(exc).strip()[:160]}); expected a model taking {in_channels}-channel "
                          f"{image_size}x{image_size} images") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, num_classes):
        got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(f"--model: {cfg.model!r} gives {got} for a {shape} input; expected logits of shape "
                          f"[1, {num_classes}] (one per class of the data)")


MODEL_PROBE_TIMEOUT_S = 60.0  # building the model and one forward pass; a user's code may never return
MODEL_EXPECTED = "expected a model that builds and runs (is its forward waiting on something?)"
REMOTE_STORAGE_TIMEOUT_S = 10.0


def check_remote_storage(uri: str) -> None:
    """--storage-path s3://, gs://, ...: pyarrow (what Ray Tune writes with) can open it and list
    it, within seconds; otherwise Tune fails only after the baseline has trained."""
    def probe():
        import pyarrow.fs

        fs, path = pyarrow.fs.FileSystem.from_uri(uri)
        fs.get_file_info(path)

    try:
        _within(REMOTE_STORAGE_TIMEOUT_S, probe, f"--storage-path: {redact(uri)!r} did not answer within "
                "{seconds} s; expected storage Ray Tune can reach from here (s3://BUCKET/PATH, gs://...)")
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow's errors for schemes, credentials, networks
        raise ConfigError(f"--storage-path: {redact(uri)!r} cannot be used ({stores.short_error(exc)}); expected "
                          "storage Ray Tune can reach from here (s3://BUCKET/PATH, gs://..., or a local folder)") from None


def _within(seconds: float, fn, what: str):
    """fn() run in a daemon thread: its result, or its exception; a ConfigError saying `what`
    (`{seconds}` filled in) when it has not returned within `seconds` (the thread is left behind;
    the process exits anyway)."""
    import threading

    import torch

    box: dict = {}
    grad_enabled = torch.is_grad_enabled()  # grad mode is per thread: the caller's no_grad applies there too

    def run():
        try:
            with torch.set_grad_enabled(grad_enabled):
                box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True, name="prune-search-model-probe")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise ConfigError(what.format(seconds=f"{seconds:g}"))
    if "error" in box:
        raise box["error"]
    return box["value"]


# ---- folders ---------------------------------------------------------------------------------

def _is_local(location: str) -> bool:
    return "://" not in location or location.startswith("file://")


# ---- MLflow and Optuna stores ------------------------------------------------------------------

def _tracking_flag(cfg: SearchConfig) -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return "MLFLOW_TRACKING_URI"
    return "--tracking-uri" if cfg.tracking_uri else "--home"


def check_tracking_store(uri: str, flag: str) -> None:
    from mlflow_config import tracking

    scheme = stores.scheme(uri)
    if scheme in SERVER_SCHEMES:
        try:
            tracking.check_reachable(uri)
        except tracking.TrackingError as exc:
            raise ConfigError(f"{flag}: {exc}") from None
    elif scheme == "sqlite":
        _check_sqlite(uri, flag, "MLflow", "experiments")
    elif scheme in DATABASE_SCHEMES:
        _check_database_server(uri, flag, "MLflow")
    else:
        raise ConfigError(f"{flag}: {redact(uri)!r} is not accepted; expected an MLflow tracking URI: "
                          "http(s)://HOST:PORT, sqlite:////ABS/PATH.db, postgresql://, mysql:// or mssql://")


def study_names(url: str, flag: str) -> list[str]:
    """The Optuna storage's study names; opening it checks it. A missing SQLite file is not
    created (an empty list), an unreadable one is one line."""
    import optuna

    scheme = stores.scheme(url)
    if scheme == "sqlite":
        if not _check_sqlite(url, flag, "Optuna", "studies"):
            return []
    elif scheme in DATABASE_SCHEMES:
        _check_database_server(url, flag, "Optuna")
    else:
        raise ConfigError(f"{flag}: {redact(url)!r} is not accepted; expected a database URL: "
                          "sqlite:////ABS/PATH.db, postgresql://, mysql://")
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs=stores.engine_kwargs(url))
        return [s.study_name for s in storage.get_all_studies()]
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy, driver and Optuna's version errors alike
        raise ConfigError(f"{flag}: the Optuna storage {redact(url)} cannot be used ({stores.short_error(exc)}); expected a "
                          "working Optuna database, or move this one away") from None


def _sqlite_path(uri: str) -> Path:
    return Path(uri.split("://", 1)[1][1:].split("?", 1)[0])  # sqlite:///ABS -> /ABS


def _check_sqlite(uri: str, flag: str, what: str, table: str) -> bool:
    """False when the file does not exist yet (it will be created, in a folder checked writable);
    else it must be an SQLite database that is empty or holds `what`'s tables."""
    path = _sqlite_path(uri)
    if not path.exists():
        check_writable(flag, path, file=True)
        return False
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=CONNECT_TIMEOUT_S)
        try:
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"{flag}: {path} is not a readable SQLite database ({exc}); expected the {what} "
                          "database of earlier searches, or move it away to start a new one") from None
    if tables and table not in tables:
        raise ConfigError(f"{flag}: {path} is an SQLite database without {what}'s tables; expected an {what} "
                          "database (or none, to start one)")
    return True


def _check_database_server(url: str, flag: str, what: str) -> None:
    reason = stores.unreachable(url)
    if reason is not None:
        raise ConfigError(f"{flag}: the {what} database {redact(url)} cannot be reached ({reason}); "
                          "expected a running database server and its URL")


