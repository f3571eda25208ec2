"""Process environment overrides, put back afterwards. MLflow, Ray and Ray Tune read part of
their configuration from environment variables, and a search run in-process (the API, a test)
must leave the caller's environment as it found it."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def overridden(values: dict[str, str | None]) -> Iterator[None]:
    """Set each variable (None: unset it) for the block; restore every one afterwards, also the
    ones the block itself changed."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        _set(values)
        yield
    finally:
        _set(saved)


def _set(values: dict[str, str | None]) -> None:
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@contextlib.contextmanager
def restored(names: tuple[str, ...]) -> Iterator[None]:
    """Leave the variables as they are for the block, and put them back as they were after it."""
    with overridden({k: os.environ.get(k) for k in names}):
        yield
