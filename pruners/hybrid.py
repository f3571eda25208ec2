"""Hybrid: filter pruning, then weight pruning of what remains, then int8 (the article's
section 6, done right).

1. FPGM removes `hybrid_filter_ratio` of the filters of every conv / hidden FC layer in
   `ratios` (physically, pruners.surgery; the classifier keeps its outputs).
2. Magnitude pruning drops each layer's sampled ratio of the SURVIVING weights (every layer in
   `ratios`, classifier included), counted on the smaller model.
3. BatchNorm statistics are recalibrated (ctx.recalibrate_bn), since removing filters and
   weights shifts every later layer's activations.

The result asks the trial (weight_bits=8, distill=Distillation(T, alpha)) to fine-tune with knowledge
distillation from the dense model (`hybrid_temperature`, `hybrid_alpha`) with the masks kept,
and only THEN call pruners.quantize.quantize_int8_ on the masked weights: post-training int8
after the fine-tune, so the stored model is int8 and its size counts int8 bytes.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Mapping

from torch import nn

# Whole modules, not names: importing any method module first runs registry.py, which imports
# this module while fpgm/magnitude may still be half-initialized.
from pruners import fpgm, magnitude
from pruners.base import Distillation, PruneContext, PruneResult
from pruners.masking import apply_masks
from pruners.registry import register
from pruners.settings import POSITIVE, Interval, MethodSettings, setting

# Removing 90%+ of every layer's filters leaves too little to weight-prune or distill into.
FILTER_RATIOS = Interval(0.0, 0.9, hi_open=True)


@dataclass(frozen=True)
class HybridSettings(MethodSettings):
    hybrid_filter_ratio: float = setting(0.25, search=(0.0, 0.5), accepted=FILTER_RATIOS,
                                         help="hybrid: fraction of filters removed before weight pruning")
    hybrid_temperature: float = setting(4.0, search=(1.0, 8.0), accepted=POSITIVE,
                                        help="hybrid: distillation temperature")
    hybrid_alpha: float = setting(0.5, search=(0.1, 0.9), accepted=Interval(0.0, 1.0),
                                  help="hybrid: distillation weight")


@register("hybrid", settings=HybridSettings, structural=True, masked=True)
def hybrid(model: nn.Module, ratios: Mapping[str, float], settings: HybridSettings, ctx: PruneContext) -> PruneResult:
    filter_ratio = settings.hybrid_filter_ratio
    if not FILTER_RATIOS.holds(filter_ratio):
        raise ValueError(f"hybrid_filter_ratio {filter_ratio} is not accepted; expected {FILTER_RATIOS.text()}")
    pruned = copy.deepcopy(model)
    filter_ratios = {n: filter_ratio for n in fpgm.filter_layers(pruned, ratios, ctx.example_input)}
    kept = fpgm.fpgm_prune_(pruned, filter_ratios, ctx.example_input)
    # Module names survive surgery, so the ratios' keys still name the (smaller) layers.
    masks = magnitude.layerwise_magnitude_masks(pruned, ratios)
    apply_masks(pruned, masks)
    if ctx.recalibrate_bn is not None:
        ctx.recalibrate_bn(pruned)
    distill = Distillation(settings.hybrid_temperature, settings.hybrid_alpha)
    return PruneResult(model=pruned, masks=masks, kept_channels=kept, weight_bits=8, distill=distill)
