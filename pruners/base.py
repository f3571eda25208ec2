"""Types shared by every pruning method.

A pruner takes the dense baseline, the per-layer ratios a trial sampled and a context of
callables for the data-dependent methods, and returns a *new* model (the baseline is never
modified) plus the masks and kept-channel indices that describe exactly what was removed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, SupportsFloat, SupportsInt

import torch
from torch import nn

Masks = dict[str, torch.Tensor]  # parameter name -> bool tensor, True = weight kept
Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class PruneContext:
    """What a data-dependent pruner may use. Loops live in `trainables`; they arrive here as
    callables so that pruners stay free of training code, Ray and MLflow."""

    example_input: torch.Tensor
    # Yields (inputs, targets) training batches, already normalized, in a fixed order per seed.
    batches: Callable[[], Iterable[Batch]] | None = None
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = nn.functional.cross_entropy
    # Trains `model` in place with `masks` enforced: the trial's short fine-tune (lottery's
    # cheap `finetune` retraining).
    retrain: Callable[[nn.Module, Masks], None] | None = None
    # Trains `model` in place with `masks` enforced from iteration k of the baseline's own
    # schedule to its end: T - k steps, same optimizer, learning rates and batch size
    # (lottery's `full` retraining, as Frankle et al. retrain).
    retrain_from: Callable[[nn.Module, Masks, int], None] | None = None
    # Optimizer steps T of the baseline's training; rewind fractions are fractions of it.
    baseline_steps: int = 0
    # Baseline weights saved at training iteration k, keyed by k (lottery's rewind points).
    rewind_states: Mapping[int, Mapping[str, torch.Tensor]] = field(default_factory=dict)
    # Re-estimates BatchNorm running statistics in place (after surgery, before an
    # un-fine-tuned evaluation).
    recalibrate_bn: Callable[[nn.Module], None] | None = None


@dataclass
class PruneResult:
    model: nn.Module
    masks: Masks = field(default_factory=dict)
    # Structural methods: module name -> sorted output-channel indices kept from the baseline.
    kept_channels: dict[str, list[int]] = field(default_factory=dict)
    # Fine-tune with knowledge distillation from the dense model.
    distill: bool = False
    # When the trial quantizes to int8 (its `quantize` setting), fine-tune with int8
    # fake-quantized weights (quantization-aware) instead of quantizing afterwards only.
    qat: bool = False
    # The method already trained the model to the end (lottery's full retraining): the trial
    # does not fine-tune it again.
    trained: bool = False


PruneFn = Callable[[nn.Module, Mapping[str, float], Mapping[str, object], PruneContext], PruneResult]


@dataclass(frozen=True)
class Pruner:
    """A registered method. `ratios` maps a prunable module name to its sampled ratio;
    `settings` holds the method's own search settings (e.g. `taylor_batches`), under the same
    keys as the search config.

    What kind of result the method gives is declared here, so that code and tests ask the
    method instead of keeping lists of names: `structural` methods physically remove output
    channels (the result's `kept_channels`, a smaller dense model); `masked` methods zero single
    weights (the result's `masks`). A method may be both (hybrid), or either depending on a
    setting (taylor's granularity): `removes(settings)` says which for one run."""

    name: str
    fn: PruneFn
    structural: bool
    masked: bool
    settings_kinds: Callable[[Mapping[str, object]], tuple[bool, bool]] | None = None

    def removes(self, settings: Mapping[str, object]) -> tuple[bool, bool]:
        """(structural, masked) for a run with these settings."""
        if self.settings_kinds is None:
            return self.structural, self.masked
        return self.settings_kinds(settings)

    def __call__(
        self,
        model: nn.Module,
        ratios: Mapping[str, float],
        settings: Mapping[str, object],
        ctx: PruneContext,
    ) -> PruneResult:
        return self.fn(model, ratios, settings, ctx)


# Settings arrive from Optuna, Ray Tune's config or a TOML file, so their values are typed
# `object`; these read one and say which setting was wrong.
_MISSING = object()


def _get(settings: Mapping[str, object], key: str, default: object) -> object:
    value = settings.get(key, default)
    if value is _MISSING:
        raise KeyError(f"missing setting {key!r}")
    return value


def int_setting(settings: Mapping[str, object], key: str, default: object = _MISSING) -> int:
    """An integer setting; integral floats (2.0) and numeric strings ("2") are accepted."""
    value = _get(settings, key, default)
    if isinstance(value, str):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, SupportsInt):
        raise TypeError(f"setting {key!r} must be an integer, got {value!r}")
    if isinstance(value, SupportsFloat) and float(value) != int(value):
        raise ValueError(f"setting {key!r} must be an integer, got {value!r}")
    return int(value)


def float_setting(settings: Mapping[str, object], key: str, default: object = _MISSING) -> float:
    value = _get(settings, key, default)
    if isinstance(value, str):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, SupportsFloat):
        raise TypeError(f"setting {key!r} must be a number, got {value!r}")
    return float(value)


def str_setting(settings: Mapping[str, object], key: str, default: object = _MISSING) -> str:
    value = _get(settings, key, default)
    if not isinstance(value, str):
        raise TypeError(f"setting {key!r} must be a string, got {value!r}")
    return value
