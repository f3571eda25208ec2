"""Hybrid: filter pruning, then weight pruning of what remains, then int8 (the article's
section 6, done right).

1. FPGM removes `hybrid_filter_ratio` of the filters of every conv / hidden FC layer in
   `ratios` (physically, pruners.surgery; the classifier keeps its outputs).
2. Magnitude pruning drops each layer's sampled ratio of the SURVIVING weights (every layer in
   `ratios`, classifier included), counted on the smaller model.
3. BatchNorm statistics are recalibrated (ctx.recalibrate_bn), since removing filters and
   weights shifts every later layer's activations.

The result asks the trial (weight_bits=8, distill=True) to fine-tune with knowledge
distillation from the dense model (`hybrid_temperature`, `hybrid_alpha`) with the masks kept,
and only THEN call pruners.quantize.quantize_int8_ on the masked weights: post-training int8
after the fine-tune, so the stored model is int8 and its size counts int8 bytes.
"""
from __future__ import annotations

import copy
from typing import Mapping

from torch import nn

# Whole modules, not names: importing any method module first runs registry.py, which imports
# this module while fpgm/magnitude may still be half-initialized.
from pruners import fpgm, magnitude
from pruners.base import PruneContext, PruneResult, float_setting
from pruners.masking import apply_masks
from pruners.registry import register

MAX_FILTER_RATIO = 0.9


@register("hybrid", structural=True, masked=True)
def hybrid(
    model: nn.Module, ratios: Mapping[str, float], settings: Mapping[str, object], ctx: PruneContext
) -> PruneResult:
    filter_ratio = float_setting(settings, "hybrid_filter_ratio", 0.0)
    if not 0.0 <= filter_ratio < MAX_FILTER_RATIO:
        raise ValueError(f"hybrid_filter_ratio {filter_ratio} outside [0, {MAX_FILTER_RATIO})")
    pruned = copy.deepcopy(model)
    filter_ratios = {n: filter_ratio for n in fpgm.filter_layers(pruned, ratios, ctx.example_input)}
    kept = fpgm.fpgm_prune_(pruned, filter_ratios, ctx.example_input)
    # Module names survive surgery, so the ratios' keys still name the (smaller) layers.
    masks = magnitude.layerwise_magnitude_masks(pruned, ratios)
    apply_masks(pruned, masks)
    if ctx.recalibrate_bn is not None:
        ctx.recalibrate_bn(pruned)
    return PruneResult(model=pruned, masks=masks, kept_channels=kept, weight_bits=8, distill=True)
