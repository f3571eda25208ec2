"""Methods by name. A literal dict filled by `register`, as timm and open_lth do."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pruners.base import PruneFn, Pruner
from pruners.settings import MethodSettings, NoSettings

PRUNERS: dict[str, Pruner] = {}


def register(name: str, *, settings: type[MethodSettings] = NoSettings, structural: bool = False,
             masked: bool = True, removes: Callable[[Any], tuple[bool, bool]] | None = None
             ) -> Callable[[PruneFn], Pruner]:
    """Register a method under `name`, with its settings dataclass (pruners.settings), declaring
    what it may remove (see `pruners.base.Pruner`); `removes(settings)` says what one run
    removes when a setting chooses (taylor's granularity)."""
    if not (structural or masked):
        raise ValueError(f"pruner {name!r} must be structural, masked or both")

    def add(fn: PruneFn) -> Pruner:
        if name in PRUNERS:
            raise ValueError(f"pruner {name!r} registered twice")
        pruner = Pruner(name=name, fn=fn, structural=structural, masked=masked, settings_type=settings,
                        settings_kinds=removes)
        PRUNERS[name] = pruner
        return pruner

    return add


def get_pruner(name: str) -> Pruner:
    try:
        return PRUNERS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(sorted(PRUNERS))}") from None


def method_names() -> list[str]:
    return list(PRUNERS)


def method_settings() -> dict[str, type[MethodSettings]]:
    """Method name -> its settings dataclass."""
    return {name: pruner.settings_type for name, pruner in PRUNERS.items()}


# Importing the method modules fills PRUNERS. Kept at the bottom so `register` exists first, and
# unsorted: this order is method_names()'s when pruners.registry is imported before any method.
from pruners import magnitude, taylor, fpgm, lottery, hybrid  # noqa: E402,F401,I001
