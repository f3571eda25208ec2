"""TrialConfig: everything one trial runs with, typed, built once.

Ray Tune hands a trial a flat dict (Optuna's sampled values plus the search's constants);
MLflow stores the same keys as params. `TrialConfig.from_flat` reads either, coercing strings
and numbers, and `as_params` gives the flat keys back. `run_trial`, the MLflow logging and
search.results.reproduce all read this one object.

Trial-wide searched settings (`finetune_lr`, `quantize`) are declared like a method's settings
(pruners.settings), in `FinetuneSettings`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pruners.registry import get_pruner
from pruners.settings import Interval, MethodSettings, setting

SPARSITY_PREFIX = "sparsity."  # per-layer ratio keys: sparsity.<module name>
OPTUNA_TRIAL = "optuna_trial"  # the Optuna trial number, tying a run to its study trial
QUANTIZE = ("none", "int8")


@dataclass(frozen=True)
class FinetuneSettings(MethodSettings):
    """Searched for every method: what follows pruning (the fine-tune, then int8 or not)."""

    finetune_lr: float = setting(0.01, search=(0.002, 0.05), kind="log", accepted=Interval(0.0, 1000.0, lo_open=True),
                                 help="fine-tune learning rate range (log scale)")
    # int8 for every method, so fronts compare pruning methods at equal precision (the size
    # counts int8 bytes: trainables.compress); BatchNorm is re-estimated after it.
    quantize: str = setting("none", search=QUANTIZE, kind="choice",
                            help="int8 after fine-tuning (per-channel weights, BN recalibrated) or none, for any "
                                 "method")


@dataclass(frozen=True)
class TrialConfig:
    method: str
    model: str
    seed: int
    finetune_epochs: float
    batch_size: int
    augment: bool
    latency_batch: int
    finetune: FinetuneSettings
    settings: MethodSettings  # the method's own (pruners.<method>), typed
    ratios: Mapping[str, float] = field(default_factory=dict)  # per-layer ratios sampled, by module name
    optuna_trial: int | None = None
    # Keys the trial does not use but the record keeps: how the search drew the ratios (`space`,
    # the schedule's start/end/curve), passed through to the params unchanged.
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_flat(cls, config: Mapping[str, object]) -> TrialConfig:
        method = str(config["method"])
        trial = config.get(OPTUNA_TRIAL)
        settings_type = get_pruner(method).settings_type
        used = {*FIXED_KEYS, OPTUNA_TRIAL, *(s.name for s in (*FinetuneSettings.specs(), *settings_type.specs()))}
        return cls(
            method=method,
            model=str(config["model"]),
            seed=int(float(str(config["seed"]))),
            finetune_epochs=float(str(config["finetune_epochs"])),
            batch_size=int(float(str(config["batch_size"]))),
            augment=_bool(config["augment"]),
            latency_batch=int(float(str(config["latency_batch"]))),
            finetune=FinetuneSettings.from_values(config),
            settings=settings_type.from_values(config),
            ratios={k[len(SPARSITY_PREFIX):]: float(str(v)) for k, v in config.items() if k.startswith(SPARSITY_PREFIX)},
            optuna_trial=None if trial in (None, "") else int(float(str(trial))),
            extra={k: v for k, v in config.items() if k not in used and not k.startswith(SPARSITY_PREFIX)},
        )

    def as_params(self) -> dict[str, object]:
        """The flat keys Ray Tune's config and MLflow's params use (only the settings in effect)."""
        out: dict[str, object] = {
            "method": self.method, "model": self.model, "seed": self.seed, "finetune_epochs": self.finetune_epochs,
            "batch_size": self.batch_size, "augment": self.augment, "latency_batch": self.latency_batch,
            **self.finetune.active_values(), **self.settings.active_values(), **self.extra,
            **{SPARSITY_PREFIX + name: ratio for name, ratio in self.ratios.items()},
        }
        if self.optuna_trial is not None:
            out[OPTUNA_TRIAL] = self.optuna_trial
        return out


FIXED_KEYS = ("method", "model", "seed", "finetune_epochs", "batch_size", "augment", "latency_batch")


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text not in ("true", "false"):
        raise ValueError(f"setting 'augment' must be true or false, got {value!r}")
    return text == "true"
