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

from mlflow_config.secrets import redact
from results.cli import check_writable
from search.config import ConfigError, SearchConfig, check_against_data

CONNECT_TIMEOUT_S = 5  # database servers: fail in seconds, not after the OS's TCP timeout
SERVER_SCHEMES = ("http", "https")
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def check_search(cfg: SearchConfig, home: Path, name: str, tracking_uri: str) -> None:
    """A new search. `tracking_uri` is the resolved one (MLFLOW_TRACKING_URI > flag > --home)."""
    check_writable("--home", home)
    if cfg.storage_path and _is_local(cfg.storage_path):
        check_writable("--storage-path", Path(cfg.storage_path.removeprefix("file://")).expanduser())
    check_data(cfg)
    check_ray(cfg.address, cfg)  # before the stores: it needs neither MLflow's nor Optuna's (slow) imports
    check_tracking_store(tracking_uri, _tracking_flag(cfg))
    optuna_url = cfg.optuna_storage or f"sqlite:///{home / 'optuna.db'}"
    flag = "--optuna-storage" if cfg.optuna_storage else "--home"
    if name in study_names(optuna_url, flag):
        raise ConfigError(f"--name: search {name!r} already exists; choose another name, or --resume {name}")


def check_resume(rec, home: Path, address: str | None) -> None:
    """Resuming `rec` (search.resume.SearchRecord, its secrets restored)."""
    check_writable("--home", home)
    check_ray(address, rec.config)
    check_tracking_store(rec.tracking_uri, "--tracking-uri")
    study_names(rec.optuna_url, "--optuna-storage")


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
    try:
        model = build_model(cfg.model, in_channels, num_classes, image_size).eval()
        for flag, path in (("--checkpoint", cfg.checkpoint), ("--rewind-checkpoint", cfg.rewind_checkpoint)):
            if path is not None:
                check_fits(model, path, flag)
    except (ModelError, CheckpointError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    shape = f"1x{in_channels}x{image_size}x{image_size}"
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, in_channels, image_size, image_size))
    except Exception as exc:  # noqa: BLE001 - the user's forward may raise anything
        raise ConfigError(f"--model: {cfg.model!r} fails on this data's input ({shape}: {type(exc).__name__}: "
                          f"{str(exc).strip()[:160]}); expected a model taking {in_channels}-channel "
                          f"{image_size}x{image_size} images") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, num_classes):
        got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(f"--model: {cfg.model!r} gives {got} for a {shape} input; expected logits of shape "
                          f"[1, {num_classes}] (one per class of the data)")


# ---- folders ---------------------------------------------------------------------------------

def _is_local(location: str) -> bool:
    return "://" not in location or location.startswith("file://")


# ---- MLflow and Optuna stores ------------------------------------------------------------------

def _tracking_flag(cfg: SearchConfig) -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return "MLFLOW_TRACKING_URI"
    return "--tracking-uri" if cfg.tracking_uri else "--home"


def _scheme(uri: str) -> str:
    return uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""


def check_tracking_store(uri: str, flag: str) -> None:
    from mlflow_config import tracking

    scheme = _scheme(uri)
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

    scheme = _scheme(url)
    if scheme == "sqlite":
        if not _check_sqlite(url, flag, "Optuna", "studies"):
            return []
    elif scheme in DATABASE_SCHEMES:
        _check_database_server(url, flag, "Optuna")
    else:
        raise ConfigError(f"{flag}: {redact(url)!r} is not accepted; expected a database URL: "
                          "sqlite:////ABS/PATH.db, postgresql://, mysql://")
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs=_engine_kwargs(url))
        return [s.study_name for s in storage.get_all_studies()]
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy, driver and Optuna's version errors alike
        raise ConfigError(f"{flag}: the Optuna storage {redact(url)} cannot be used ({_short(exc)}); expected a "
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


def _engine_kwargs(url: str) -> dict:
    if _scheme(url) in ("postgresql", "mysql"):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    return {}


def _check_database_server(url: str, flag: str, what: str) -> None:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url, **_engine_kwargs(url))
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except Exception as exc:  # noqa: BLE001 - bad URL, missing driver, refused, auth: one line
        raise ConfigError(f"{flag}: the {what} database {redact(url)} cannot be reached ({_short(exc)}); "
                          "expected a running database server and its URL") from None


def _short(exc: BaseException) -> str:
    text = redact(str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
