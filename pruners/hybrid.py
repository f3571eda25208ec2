"""Hybrid: filter pruning, then weight pruning of what remains, then fine-tuning with knowledge
distillation (the article's section 6, done right).

1. FPGM removes `hybrid_filter_ratio` of the filters of every conv / hidden FC layer in
   `ratios` (physically, pruners.surgery; the classifier keeps its outputs).
2. Magnitude pruning drops each layer's sampled ratio of the SURVIVING weights (every layer in
   `ratios`, classifier included), counted on the smaller model.
3. The result asks the trial (distill=True) to fine-tune with knowledge distillation from the
   dense model (`hybrid_temperature`, `hybrid_alpha`) with the masks kept.

int8 is the trial's `quantize` axis, open to every method, so that fronts compare pruning
methods at equal precision. What hybrid adds is how it gets there: `hybrid_quant = "qat"` runs
the distillation fine-tune on int8 fake-quantized weights (quantization-aware), `"ptq"` quantizes
after it. BatchNorm is recalibrated by the trial where that acts (see trainables.trial): not
here, before a fine-tune whose train-mode BatchNorm would overwrite the statistics anyway.
"""
from __future__ import annotations

import copy
from typing import Mapping

from torch import nn

# Whole modules, not names: importing any method module first runs registry.py, which imports
# this module while fpgm/magnitude may still be half-initialized.
from pruners import fpgm, magnitude
from pruners.base import PruneContext, PruneResult, float_setting, str_setting
from pruners.masking import apply_masks
from pruners.registry import register

MAX_FILTER_RATIO = 0.9
QUANT_MODES = ("ptq", "qat")


@register("hybrid", structural=True, masked=True)
def hybrid(
    model: nn.Module, ratios: Mapping[str, float], settings: Mapping[str, object], ctx: PruneContext
) -> PruneResult:
    filter_ratio = float_setting(settings, "hybrid_filter_ratio", 0.0)
    if not 0.0 <= filter_ratio < MAX_FILTER_RATIO:
        raise ValueError(f"hybrid_filter_ratio {filter_ratio} outside [0, {MAX_FILTER_RATIO})")
    quant = str_setting(settings, "hybrid_quant", "ptq")
    if quant not in QUANT_MODES:
        raise ValueError(f"hybrid_quant {quant!r}; expected one of {', '.join(QUANT_MODES)}")
    pruned = copy.deepcopy(model)
    filter_ratios = {n: filter_ratio for n in fpgm.filter_layers(pruned, ratios)}
    kept = fpgm.fpgm_prune_(pruned, filter_ratios, ctx.example_input)
    # Module names survive surgery, so the ratios' keys still name the (smaller) layers.
    masks = magnitude.layerwise_magnitude_masks(pruned, ratios)
    apply_masks(pruned, masks)
    return PruneResult(model=pruned, masks=masks, kept_channels=kept, distill=True, qat=quant == "qat")
