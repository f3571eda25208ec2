"""How a method declares its settings: one typed, frozen dataclass next to the method's code.

Each field is made with `setting(...)`, whose metadata says everything the rest of the product
derives from it, so no other file spells the setting again:

- `search`: the range (lo, hi) or the choices a search samples from by default; it becomes a
  SearchConfig field, a CLI flag (`--taylor-batches 1,8`) and a TOML key;
- `kind`: how it is sampled and parsed: float, log (float on a log scale), int, or choice;
- `accepted`: the values a trial may run with (an Interval, or the tuple of choices), checked
  before a search starts, and again whenever settings are built (`MethodSettings.__post_init__`),
  so no method re-checks its own settings;
- `help`: the CLI help and the README's settings table;
- `when`: (other setting, its values): sampled only when the other setting takes one of them.

The field's default is what the method runs with when a caller gives no value (tests, benchmarks).
A trial gets an instance: `TaylorSettings(taylor_batches=4)`, typed, built by `from_values`
from the strings or numbers Optuna, Ray Tune, TOML and MLflow carry.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

KINDS = ("float", "log", "int", "choice")
_TYPES = {"int": int, "float": float, "str": str}


@dataclass(frozen=True)
class Interval:
    """Accepted values of a number: lo <= x (or lo < x), x <= hi (or x < hi); always finite."""

    lo: float
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False

    def holds(self, x: float) -> bool:
        return (math.isfinite(x) and (self.lo < x if self.lo_open else self.lo <= x)
                and (x < self.hi if self.hi_open else x <= self.hi))

    def text(self, what: str = "x") -> str:
        low = f"{_num(self.lo)} {'<' if self.lo_open else '<='} {what}"
        return low if self.hi == math.inf else f"{low} {'<' if self.hi_open else '<='} {_num(self.hi)}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


RATIO = Interval(0.0, 1.0, hi_open=True)
POSITIVE = Interval(0.0, lo_open=True)
AT_LEAST_1 = Interval(1)
NON_NEGATIVE = Interval(0)


@dataclass(frozen=True)
class SettingSpec:
    """One setting as the search sees it (see the module docstring)."""

    name: str
    kind: str
    search: tuple  # default range (lo, hi) or choices
    accepted: Interval | tuple
    help: str
    value_type: type  # int, float or str: the type a trial receives
    when: tuple[str, tuple] | None = None
    # Counted in training batches: checked against the data's batch count before the search
    # starts (a range whose low end exceeds it is refused; trials clip the rest with a note).
    counts_batches: bool = False

    @property
    def is_range(self) -> bool:
        return self.kind != "choice"

    def accepts(self, value: Any) -> bool:
        if isinstance(self.accepted, Interval):
            return isinstance(value, (int, float)) and not isinstance(value, bool) and self.accepted.holds(value)
        return value in self.accepted

    def accepted_text(self) -> str:
        if isinstance(self.accepted, Interval):
            return self.accepted.text(self.name.replace("_", "-"))
        return ", ".join(map(str, self.accepted))

    def check(self, value: Any) -> None:
        """Raise one ValueError naming the setting, the value and what is accepted, unless it is."""
        if not self.accepts(value):
            expected = (self.accepted.text(self.name) if isinstance(self.accepted, Interval)
                        else f"one of {', '.join(map(str, self.accepted))}")
            raise ValueError(f"{self.name} {value!r} is not accepted; expected {expected}")

    def active(self, values: Mapping[str, Any]) -> bool:
        """Whether this setting applies, given the other settings' values."""
        return self.when is None or values.get(self.when[0]) in self.when[1]


def setting(default: Any, *, search: tuple, help: str, kind: str = "float",  # noqa: A002 - mirrors argparse
            accepted: Interval | tuple | None = None, when: tuple[str, tuple] | None = None,
            counts_batches: bool = False) -> Any:
    """A settings-dataclass field (see the module docstring). Choices default to accepting
    exactly the searched ones."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {KINDS}")
    if accepted is None:
        if kind != "choice":
            raise ValueError("a range setting needs `accepted` (an Interval)")
        accepted = tuple(search)
    meta = {"kind": kind, "search": tuple(search), "accepted": accepted, "help": help, "when": when,
            "counts_batches": counts_batches}
    return field(default=default, metadata={"setting": meta})


@dataclass(frozen=True)
class MethodSettings:
    """Base of every settings dataclass. A subclass adds `setting(...)` fields only."""

    def __post_init__(self) -> None:
        # Every way of building settings (from_values, a test's or benchmark's constructor) meets
        # the same check, so a method can trust its settings and never re-checks them by hand.
        for spec in self.specs():
            spec.check(getattr(self, spec.name))

    @classmethod
    def specs(cls) -> tuple[SettingSpec, ...]:
        return tuple(SettingSpec(f.name, value_type=_TYPES[str(f.type)], **f.metadata["setting"])
                     for f in fields(cls))

    @classmethod
    def from_values(cls, values: Mapping[str, object]) -> MethodSettings:
        """Pick this class's settings out of a flat mapping (other keys are ignored), each
        coerced to its type and checked against what it accepts; absent ones keep their default.
        Says which setting was wrong."""
        out = {}
        for spec in cls.specs():
            if spec.name in values:
                out[spec.name] = _coerce(spec, values[spec.name])
        return cls(**out)

    def uses_layer_ratios(self) -> bool:
        """Whether the method takes one sampled ratio per layer (False: a single global target
        it spreads over the layers itself, e.g. LAMP)."""
        return True

    def active_values(self) -> dict[str, Any]:
        """The settings that apply to this instance, by name: the trial's MLflow params."""
        specs = self.specs()
        values = {spec.name: getattr(self, spec.name) for spec in specs}
        return {spec.name: values[spec.name] for spec in specs if spec.active(values)}

    @classmethod
    def check_against_baseline(cls, searched: Mapping[str, Any], baseline_steps: int) -> tuple[str, str] | None:
        """A search's ranges/choices against the baseline's length in training iterations:
        (setting name, what is accepted) when they do not fit, else None."""
        return None

    @classmethod
    def baseline_checkpoints(cls, searched: Mapping[str, Any], baseline_steps: int = 0) -> tuple[int, ...]:
        """Training iterations whose weights the dense baseline must keep for a search with
        these ranges/choices, of its `baseline_steps` (lottery's rewind points; 0 steps: a
        checkpoint, nothing trained, so only iteration 0 can exist)."""
        return ()


def _coerce(spec: SettingSpec, value: object) -> Any:
    try:
        if spec.value_type is int:
            number = float(value) if isinstance(value, str) else value
            if isinstance(number, bool) or not isinstance(number, (int, float)) or float(number) != int(number):
                raise ValueError
            return int(number)
        if spec.value_type is float:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError
            return float(value)
        if not isinstance(value, str):
            raise ValueError
        return value
    except (TypeError, ValueError):
        raise ValueError(f"setting {spec.name!r} must be {spec.value_type.__name__}, got {value!r}") from None


@dataclass(frozen=True)
class NoSettings(MethodSettings):
    """For a method that has no settings of its own (its per-layer ratios are all it takes)."""
