"""Credentials in URIs: never shown, never stored in clear.

`scheme://user:password@host/...` is how MLflow, SQLAlchemy (Optuna) and PostgreSQL URLs carry a
password. `redact` masks it for every message, log line and stored record; `split_userinfo`
takes it out of an HTTP URI so it can travel the way MLflow expects (MLFLOW_TRACKING_USERNAME /
MLFLOW_TRACKING_PASSWORD), not inside a URL that ends up in error messages.
No MLflow import: cheap enough for the config module to use.
"""
from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# Where credentials start: scheme://user: (a user name holds none of / : @ or whitespace).
_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/:@\s]*:")
# What follows the '@' that ends them: a host name, IPv4 or [IPv6] literal, an optional port, then
# the end of the URL (a path, a query, whitespace, a closing quote or bracket, or the end).
_HOST = re.compile(r"(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?(?=$|[/?#\s'\")\],;])")


def _password_span(text: str, start: int) -> tuple[int, int] | None:
    """(start, end) of the password that begins at `start` (just after "scheme://user:"): up to the
    last '@' that a host follows, on the same line and before the next URL, so a password may hold
    '@', '/', ':', spaces and any other character. None when no host follows any '@' (a port, not
    a password). Where a text has an '@' after a URL without a password (a mail address), more
    than the password is masked: the safe way to be wrong."""
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    following = _SCHEME.search(text, start, line_end)  # the next URL on the line is not this one's
    end = following.start() if following else line_end
    at = text.rfind("@", start, end)
    while at >= 0:
        if _HOST.match(text, at + 1):
            return start, at
        at = text.rfind("@", start, at)
    return None


def redact(text: str) -> str:
    """scheme://user:secret@host -> scheme://user:***@host, anywhere in `text`."""
    out, pos = [], 0
    for m in _CREDENTIALS.finditer(text):
        if m.start() < pos:
            continue
        span = _password_span(text, m.end())
        if span is None:
            continue
        out.append(text[pos:span[0]] + MASK)
        pos = span[1]
    return "".join(out) + text[pos:]


def is_redacted(uri: str) -> bool:
    return f":{MASK}@" in uri


def split_userinfo(uri: str) -> tuple[str, str | None, str | None]:
    """(uri without user:password@, username, password); the user and password are URL-decoded.
    A password typed raw (with '@', '/', ':' or spaces) is found as `redact` finds it."""
    head, sep, rest = uri.partition("://")
    if not sep:
        return uri, None, None
    m = _CREDENTIALS.match(uri)
    span = _password_span(uri, m.end()) if m else None
    if span is not None:
        user, password = uri[len(head) + 3:m.end() - 1], uri[span[0]:span[1]]
        return f"{head}://{uri[span[1] + 1:]}", unquote(user), unquote(password)
    authority = rest.split("/", 1)[0]
    if "@" in authority:  # user@host, no password
        user, host = authority.rsplit("@", 1)
        return f"{head}://{host}{rest[len(authority):]}", unquote(user), None
    return uri, None, None
