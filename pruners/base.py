"""Types shared by every pruning method.

A pruner takes the dense baseline, the per-layer ratios a trial sampled and a context of
callables for the data-dependent methods, and returns a *new* model (the baseline is never
modified) plus the masks and kept-channel indices that describe exactly what was removed.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from pruners.settings import MethodSettings

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
    # Fine-tune with knowledge distillation from the dense model, at these settings (None: plain).
    distill: Distillation | None = None
    # When the trial quantizes to int8 (its `quantize` setting), fine-tune with int8
    # fake-quantized weights (quantization-aware) instead of quantizing afterwards only.
    qat: bool = False
    # The method already trained the model to the end (lottery's full retraining): the trial
    # does not fine-tune it again.
    trained: bool = False
    # What a user should know about this run that is not an error: a setting clipped to the
    # data, nothing prunable in the model. The trial logs them and records them in MLflow.
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Distillation:
    """Hinton et al.'s knowledge distillation: softmax temperature and the soft loss's weight."""

    temperature: float
    alpha: float


def load_weights(model: nn.Module, state: Mapping[str, torch.Tensor]) -> nn.Module:
    """`model.load_state_dict(state)` (strict) for states kept as plain dicts: those carry no
    `_metadata`, and some modules' loaders require its version (torchvision's MNASNet raises
    without it), so the model's own metadata is attached. The weights come from this code's own
    models, so the model's version is theirs."""
    if getattr(state, "_metadata", None) is None:
        state = OrderedDict(state)
        state._metadata = getattr(model.state_dict(), "_metadata", None)  # type: ignore[attr-defined]
    model.load_state_dict(state)
    return model


# (model, ratios, the method's typed settings, context) -> result; each method types its settings.
PruneFn = Callable[[nn.Module, Mapping[str, float], Any, PruneContext], PruneResult]


@dataclass(frozen=True)
class Pruner:
    """A registered method. `ratios` maps a prunable module name to its sampled ratio;
    `settings` is an instance of the method's own settings dataclass (`settings_type`, see
    pruners.settings), or a flat mapping it is built from.

    What kind of result the method gives is declared here, so that code and tests ask the
    method instead of keeping lists of names: `structural` methods physically remove output
    channels (the result's `kept_channels`, a smaller dense model); `masked` methods zero single
    weights (the result's `masks`). A method may be both (hybrid), or either depending on a
    setting (taylor's granularity): `removes(settings)` says which for one run."""

    name: str
    fn: PruneFn
    structural: bool
    masked: bool
    settings_type: type[MethodSettings]
    # What one run removes when a setting chooses (taylor's granularity): settings -> (structural,
    # masked); None: always what is declared above.
    settings_kinds: Callable[[Any], tuple[bool, bool]] | None = None

    def _typed(self, settings: MethodSettings | Mapping[str, object]) -> MethodSettings:
        if isinstance(settings, self.settings_type):
            return settings
        if isinstance(settings, MethodSettings):
            raise TypeError(f"{self.name} takes {self.settings_type.__name__}, got {type(settings).__name__}")
        return self.settings_type.from_values(settings)

    def removes(self, settings: MethodSettings | Mapping[str, object] | None = None) -> tuple[bool, bool]:
        """(structural, masked) for a run with these settings (None: the declared defaults)."""
        if self.settings_kinds is None:
            return self.structural, self.masked
        return self.settings_kinds(self._typed({} if settings is None else settings))

    def ratios_are_filters(self, settings: MethodSettings | Mapping[str, object] | None = None) -> bool:
        """Its per-layer ratio is a fraction of filters (whole output channels) removed, not of
        weights: then the classifier's outputs (the classes) are never pruned, and layers whose
        outputs a residual addition ties together share one ratio."""
        structural, masked = self.removes(settings)
        return structural and not masked

    def __call__(
        self,
        model: nn.Module,
        ratios: Mapping[str, float],
        settings: MethodSettings | Mapping[str, object],
        ctx: PruneContext,
    ) -> PruneResult:
        return self.fn(model, ratios, self._typed(settings), ctx)
