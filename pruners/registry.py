"""Methods by name. A literal dict filled by `register`, as timm and open_lth do."""
from __future__ import annotations

from typing import Callable

from pruners.base import Pruner

PRUNERS: dict[str, Pruner] = {}


def register(name: str) -> Callable[[Callable], Callable]:
    def add(fn: Callable) -> Callable:
        if name in PRUNERS:
            raise ValueError(f"pruner {name!r} registered twice")
        fn.name = name  # type: ignore[attr-defined]
        PRUNERS[name] = fn  # type: ignore[assignment]
        return fn

    return add


def get_pruner(name: str) -> Pruner:
    try:
        return PRUNERS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(sorted(PRUNERS))}") from None


def method_names() -> list[str]:
    return list(PRUNERS)


# Importing the method modules fills PRUNERS. Kept at the bottom so `register` exists first.
from pruners import magnitude, taylor, fpgm, lottery, hybrid  # noqa: E402,F401
