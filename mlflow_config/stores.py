"""Database URLs of the stores (MLflow's backend, Optuna's storage), as a user types them and as
SQLAlchemy needs them, and whether the server behind one answers.

- A relative SQLite path (`sqlite:///rel.db`) is made absolute against the current directory,
  once, when the search starts: a resume from another directory, a Ray worker and the record
  all mean the same file.
- `postgresql://` without a driver: SQLAlchemy 2.1 picks psycopg 3; where only psycopg2 is
  installed, the URL names psycopg2, so the README's plain URL works.
- A password typed raw (with '@', '/', ':', a space or non-ASCII characters) is percent-encoded,
  as SQLAlchemy's URL parser needs.
No MLflow import (the config module uses it).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from urllib.parse import quote

from mlflow_config.secrets import redact, split_userinfo

CONNECT_TIMEOUT_S = 5  # database servers: fail in seconds, not after the OS's TCP timeout
DATABASE_SCHEMES = ("postgresql", "mysql", "mssql", "oracle")


def scheme(url: str) -> str:
    """`postgresql+psycopg2://...` -> `postgresql`; '' for a plain path."""
    return url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""


def normalize(url: str) -> str:
    """The URL as the stores should receive it (see the module docstring); others unchanged."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        path, _, query = url[len("sqlite:///"):].partition("?")
        if path and path != ":memory:":
            return f"sqlite:///{Path(path).expanduser().absolute()}" + (f"?{query}" if query else "")
        return url
    if scheme(url) not in DATABASE_SCHEMES:
        return url
    clean, user, password = split_userinfo(url)
    if user is not None or password is not None:
        head, rest = clean.split("://", 1)
        auth = quote(user or "", safe="") + (f":{quote(password, safe='')}" if password is not None else "")
        url = f"{head}://{auth}@{rest}"
    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        url = "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def engine_kwargs(url: str) -> dict:
    if scheme(url) in ("postgresql", "mysql"):
        return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    return {}


def unreachable(url: str) -> str | None:
    """None when a connection to the database server opens (within CONNECT_TIMEOUT_S); else
    why not, in one line with any password masked."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(normalize(url), **engine_kwargs(url))
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except Exception as exc:  # noqa: BLE001 - bad URL, missing driver, refused, auth: one line
        return short_error(exc)
    return None


def short_error(exc: BaseException) -> str:
    text = redact(str(exc)).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
