"""Coercion: a CLI string or a TOML value to a SearchConfig field's type, by the field's
annotation, with one clear error naming the flag when it cannot be done. Numbers are read as a
user writes them (plain ASCII decimals), never as Python's float() would take them."""
from __future__ import annotations

import math
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

from search.results.cli_kit import UsageError


class ConfigError(UsageError):
    """Bad user input; the CLI prints it as one line and exits 2."""


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def bad(name: str, value: Any, accepted: str) -> ConfigError:
    """The one error line: the flag, the value as given, and what is accepted."""
    shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
    return ConfigError(f"{flag(name)}: {shown!r} is not accepted; expected {accepted}")


def coerce_all(config_type, values: dict[str, Any]) -> dict[str, Any]:
    """Each known field's value coerced to its annotation."""
    annotations = {f.name: str(f.type) for f in fields(config_type)}
    return {k: parse_value(k, annotations[k], v) for k, v in values.items() if k in annotations}


def parse_value(name: str, annotation: str, raw: Any) -> Any:
    """Coerce a CLI string or TOML value to the field's type; one clear error when it can't."""
    try:
        if annotation == "bool | None" and (raw is None or str(raw).lower() in ("auto", "none")):
            return None
        if annotation in ("bool", "bool | None"):
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if annotation == "int":
            return _integer(raw)
        if annotation == "int | None":  # unset: None (the search record writes it as "None")
            return None if raw is None or str(raw) in ("", "None") else _integer(raw)
        if annotation == "float":
            return _finite(raw)
        if annotation in ("Range", "IntRange"):
            parts = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
            vals = tuple(_finite(p) for p in parts)
            if annotation == "IntRange":
                if not all(v.is_integer() for v in vals):
                    raise ValueError
                vals = tuple(int(v) for v in vals)
            if len(vals) == 1:
                vals = vals * 2
            if len(vals) != 2:
                raise ValueError
            return vals
        if annotation.startswith("tuple[str"):
            parts = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
            return tuple(str(p).strip() for p in parts if str(p).strip())
        if annotation.startswith("tuple[int"):
            parts = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
            return tuple(_integer(p) for p in parts)
        if annotation.startswith("tuple[float"):
            parts = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
            return tuple(_finite(p) for p in parts)
        if annotation.startswith("Path"):
            return None if raw in (None, "") else Path(str(raw)).expanduser()
        return None if raw is None else str(raw)
    except (TypeError, ValueError, OverflowError):
        expected = {"int": "an integer", "int | None": "an integer", "float": "a finite number", "bool": "true or false",
                    "bool | None": "true, false or auto",
                    "Range": "lo,hi finite numbers (or one number)", "IntRange": "lo,hi integers (or one integer)",
                    "tuple[int, ...]": "comma-separated integers",
                    "tuple[float, ...]": "comma-separated finite numbers"}.get(annotation, "a value")
        shown = ",".join(map(str, raw)) if isinstance(raw, (list, tuple)) else raw
        raise ConfigError(f"--{name.replace('_', '-')}: {shown!r} is not {expected}") from None


def _finite(value: Any) -> float:
    """A number as a user writes one: a TOML int or float (never a bool), or plain ASCII decimal
    text (Python's float() would also take '1_000', ' 5 ', fullwidth digits, 'inf' and 'nan')."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError
    if isinstance(value, str) and not _NUMBER.fullmatch(value):
        raise ValueError
    number = float(value)
    if not math.isfinite(number):
        raise ValueError
    return number


_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def _integer(value: Any) -> int:
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value, re.ASCII):
        return int(value)  # exactly, however large: the range check names the value as typed
    number = _finite(value)
    if not number.is_integer():
        raise ValueError
    return int(number)
