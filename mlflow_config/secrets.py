"""Credentials in URIs: never shown, never stored in clear.

`scheme://user:password@host/...` is how MLflow, SQLAlchemy (Optuna) and PostgreSQL URLs carry a
password. `redact` masks it for every message, log line and stored record; `split_userinfo`
takes it out of an HTTP URI so it can travel the way MLflow expects (MLFLOW_TRACKING_USERNAME /
MLFLOW_TRACKING_PASSWORD), not inside a URL that ends up in error messages.
No MLflow import: cheap enough for the config module to use.
"""
from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
_PASSWORD = re.compile(r"(://[^/:@\s]*:)[^@/\s]*@")


def redact(text: str) -> str:
    """scheme://user:secret@host -> scheme://user:***@host, anywhere in `text`."""
    return _PASSWORD.sub(rf"\g<1>{MASK}@", text)


def is_redacted(uri: str) -> bool:
    return f":{MASK}@" in uri


def split_userinfo(uri: str) -> tuple[str, str | None, str | None]:
    """(uri without user:password@, username, password); the user and password are URL-decoded."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri, None, None
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port is not None else "")
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)), user, password
