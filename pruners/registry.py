"""Methods by name. A literal dict filled by `register`, as timm and open_lth do. Every module of
the package is imported here, so a new method is one file with `@register` (plus its tests):
nothing else lists the methods."""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

import pruners
from pruners.base import PruneFn, Pruner
from pruners.settings import MethodSettings, NoSettings

PRUNERS: dict[str, Pruner] = {}
_ORDER: dict[str, int] = {}  # where each method stands in method_names(): the CLI's default order


def register(name: str, *, settings: type[MethodSettings] = NoSettings, structural: bool = False,
             masked: bool = True, removes: Callable[[Any], tuple[bool, bool]] | None = None, order: int = 100
             ) -> Callable[[PruneFn], Pruner]:
    """Register a method under `name`, with its settings dataclass (pruners.settings), declaring
    what it may remove (see `pruners.base.Pruner`); `removes(settings)` says what one run
    removes when a setting chooses (taylor's granularity). `order` places it in method_names()
    (ties by name), whatever order the modules were imported in."""
    if not (structural or masked):
        raise ValueError(f"pruner {name!r} must be structural, masked or both")

    def add(fn: PruneFn) -> Pruner:
        if name in PRUNERS:
            raise ValueError(f"pruner {name!r} registered twice")
        pruner = Pruner(name=name, fn=fn, structural=structural, masked=masked, settings_type=settings,
                        settings_kinds=removes)
        PRUNERS[name] = pruner
        _ORDER[name] = order
        return pruner

    return add


def get_pruner(name: str) -> Pruner:
    try:
        return PRUNERS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(sorted(PRUNERS))}") from None


def method_names() -> list[str]:
    return sorted(PRUNERS, key=lambda name: (_ORDER[name], name))


def method_settings() -> dict[str, type[MethodSettings]]:
    """Method name -> its settings dataclass."""
    return {name: PRUNERS[name].settings_type for name in method_names()}


# Importing every module of the package registers every method; at the bottom, so that
# `register` exists first.
for _module in pkgutil.iter_modules(pruners.__path__):
    importlib.import_module(f"pruners.{_module.name}")
