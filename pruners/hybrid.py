"""Hybrid: filter pruning, then weight pruning of what remains, then fine-tuning with knowledge
distillation (the article's section 6, done right).

1. FPGM removes `hybrid_filter_ratio` of the filters of every conv / hidden FC layer in
   `ratios` (physically, pruners.surgery; the classifier keeps its outputs).
2. Magnitude pruning drops each layer's sampled ratio of the SURVIVING weights (every layer in
   `ratios`, classifier included), counted on the smaller model.
3. The result asks the trial (distill=Distillation(T, alpha)) to fine-tune with knowledge distillation from the
   dense model (`hybrid_temperature`, `hybrid_alpha`) with the masks kept.

int8 is the trial's `quantize` axis, open to every method, so that fronts compare pruning
methods at equal precision. What hybrid adds is how it gets there: `hybrid_quant = "qat"` runs
the distillation fine-tune on int8 fake-quantized weights (quantization-aware), `"ptq"` quantizes
after it. BatchNorm is recalibrated by the trial where that acts (see trainables.trial): not
here, before a fine-tune whose train-mode BatchNorm would overwrite the statistics anyway.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Mapping

from torch import nn

# Whole modules, not names: importing any method module first runs registry.py, which imports
# this module while fpgm/magnitude may still be half-initialized.
from pruners import fpgm, magnitude
from pruners.graph import filter_layers, nothing_to_prune
from pruners.base import Distillation, PruneContext, PruneResult
from pruners.masking import apply_masks
from pruners.registry import register
from pruners.settings import Interval, MethodSettings, setting

# Removing 90%+ of every layer's filters leaves too little to weight-prune or distill into.
FILTER_RATIOS = Interval(0.0, 0.9, hi_open=True)
QUANT_MODES = ("ptq", "qat")


@dataclass(frozen=True)
class HybridSettings(MethodSettings):
    hybrid_filter_ratio: float = setting(0.25, search=(0.0, 0.5), accepted=FILTER_RATIOS,
                                         help="hybrid: fraction of filters removed before weight pruning")
    hybrid_temperature: float = setting(4.0, search=(1.0, 8.0), accepted=Interval(0.0, 100.0, lo_open=True),
                                        help="hybrid: distillation temperature")
    hybrid_alpha: float = setting(0.5, search=(0.1, 0.9), accepted=Interval(0.0, 1.0),
                                  help="hybrid: distillation weight")
    hybrid_quant: str = setting("ptq", search=("ptq",), kind="choice", accepted=QUANT_MODES,
                                help="hybrid, when the trial quantizes (--quantize int8): ptq (int8 after the "
                                     "distillation fine-tune) or qat (the fine-tune runs on fake-quantized int8 weights)")


@register("hybrid", settings=HybridSettings, structural=True, masked=True)
def hybrid(model: nn.Module, ratios: Mapping[str, float], settings: HybridSettings, ctx: PruneContext) -> PruneResult:
    filter_ratio = settings.hybrid_filter_ratio
    if not FILTER_RATIOS.holds(filter_ratio):
        raise ValueError(f"hybrid_filter_ratio {filter_ratio} is not accepted; expected {FILTER_RATIOS.text()}")
    if settings.hybrid_quant not in QUANT_MODES:
        raise ValueError(f"hybrid_quant {settings.hybrid_quant!r}; expected one of {', '.join(QUANT_MODES)}")
    pruned = copy.deepcopy(model)
    filter_ratios = {n: filter_ratio for n in filter_layers(pruned, ratios, ctx.example_input)}
    kept = fpgm.fpgm_prune_(pruned, filter_ratios, ctx.example_input)
    # Module names survive surgery, so the ratios' keys still name the (smaller) layers.
    masks = magnitude.layerwise_magnitude_masks(pruned, ratios)
    apply_masks(pruned, masks)
    distill = Distillation(settings.hybrid_temperature, settings.hybrid_alpha)
    notes = [] if kept or not filter_ratio else [nothing_to_prune("hybrid") + ", weights pruned only"]
    return PruneResult(model=pruned, masks=masks, kept_channels=kept, distill=distill,
                       qat=settings.hybrid_quant == "qat", notes=notes)
