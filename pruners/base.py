"""Types shared by every pruning method.

A pruner takes the dense baseline, the per-layer ratios a trial sampled and a context of
callables for the data-dependent methods, and returns a *new* model (the baseline is never
modified) plus the masks and kept-channel indices that describe exactly what was removed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

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
    # Trains `model` in place with `masks` enforced (lottery's per-round retraining).
    retrain: Callable[[nn.Module, Masks], None] | None = None
    # Baseline weights saved at training iteration k, keyed by k (lottery's rewind points).
    rewind_states: Mapping[int, Mapping[str, torch.Tensor]] = field(default_factory=dict)
    # Re-estimates BatchNorm running statistics in place (hybrid, after surgery).
    recalibrate_bn: Callable[[nn.Module], None] | None = None


@dataclass
class PruneResult:
    model: nn.Module
    masks: Masks = field(default_factory=dict)
    # Structural methods: module name -> sorted output-channel indices kept from the baseline.
    kept_channels: dict[str, list[int]] = field(default_factory=dict)
    # Bits per stored weight value. 8 asks the trial to quantize the prunable layers' weights
    # to int8 (pruners.quantize) once fine-tuning is done, so the stored model is int8.
    weight_bits: int = 32
    # Fine-tune with knowledge distillation from the dense model, at these settings (None: plain).
    distill: Distillation | None = None


@dataclass(frozen=True)
class Distillation:
    """Hinton et al.'s knowledge distillation: softmax temperature and the soft loss's weight."""

    temperature: float
    alpha: float


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
    weights (the result's `masks`). A method may be both (hybrid)."""

    name: str
    fn: PruneFn
    structural: bool
    masked: bool
    settings_type: type[MethodSettings]

    @property
    def ratios_are_filters(self) -> bool:
        """Its per-layer ratio is a fraction of filters (whole output channels) removed, not of
        weights: then the classifier's outputs (the classes) are never pruned, and layers whose
        outputs a residual addition ties together share one ratio."""
        return self.structural and not self.masked

    def __call__(
        self,
        model: nn.Module,
        ratios: Mapping[str, float],
        settings: MethodSettings | Mapping[str, object],
        ctx: PruneContext,
    ) -> PruneResult:
        if not isinstance(settings, self.settings_type):
            if isinstance(settings, MethodSettings):
                raise TypeError(f"{self.name} takes {self.settings_type.__name__}, got {type(settings).__name__}")
            settings = self.settings_type.from_values(settings)
        return self.fn(model, ratios, settings, ctx)
