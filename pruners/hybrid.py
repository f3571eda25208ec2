"""Hybrid: filter pruning, then weight pruning of what remains, then fine-tuning with knowledge
distillation (the article's section 6, done right).

1. Filters: FPGM importance, `hybrid_filter_ratio` of the filters of every conv / hidden FC
   layer in `ratios`, removed physically (pruners.surgery; the classifier keeps its outputs).
2. Weights: magnitude importance, each layer's sampled ratio of the SURVIVING weights (every
   layer in `ratios`, classifier included), counted on the smaller model; masks.
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
from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from pruners.allocation import filter_groups, layer_channel_drop, layer_masks
from pruners.base import Distillation, PruneContext, PruneResult
from pruners.graph import nothing_to_prune
from pruners.importance import fpgm_scores, root_scores, weight_scores
from pruners.masking import apply_masks
from pruners.registry import register
from pruners.settings import Interval, MethodSettings, setting
from pruners.surgery import remove_group_channels

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


@register("hybrid", settings=HybridSettings, structural=True, masked=True, order=4)
def hybrid(model: nn.Module, ratios: Mapping[str, float], settings: HybridSettings, ctx: PruneContext) -> PruneResult:
    pruned = copy.deepcopy(model)
    # 1. Filters: FPGM on each group's root, the same fraction of every filter layer.
    groups = filter_groups(pruned, ratios, ctx.example_input)
    filter_ratios = {g.root: settings.hybrid_filter_ratio for g in groups}
    root_drop = layer_channel_drop(groups, root_scores(pruned, groups, fpgm_scores), filter_ratios)
    kept = remove_group_channels(pruned, groups, root_drop, ctx.example_input)
    # 2. Weights: |w| of the survivors. Module names survive surgery, so the ratios' keys still
    # name the (smaller) layers.
    masks = layer_masks(weight_scores(pruned, ratios), ratios)
    apply_masks(pruned, masks)
    distill = Distillation(settings.hybrid_temperature, settings.hybrid_alpha)
    notes = [] if kept or not settings.hybrid_filter_ratio else [nothing_to_prune("hybrid") + ", weights pruned only"]
    return PruneResult(model=pruned, masks=masks, kept_channels=kept, distill=distill,
                       qat=settings.hybrid_quant == "qat", notes=notes)
