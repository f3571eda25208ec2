"""Errors the CLIs print as one line and exit 2 for; the one line of an exception they quote."""
from __future__ import annotations


class DataError(Exception):
    """Missing or unreadable data; the CLI turns it into one line and exit 2."""


def one_line(exc: BaseException) -> str:
    """`Type: first line of the message`, short: a caught exception quoted inside a one-line error
    (a traceback or a multi-line message would break the CLIs' one-line contract)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
