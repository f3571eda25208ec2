"""Magnitude pruning: drop the smallest |w| in each layer at that layer's ratio, or, with
`magnitude_scope = "global"`, the smallest |w| across all prunable layers at `global_sparsity`
(the article's recipe, done right: exact counts, masks kept through fine-tuning). The scopes
`lamp` and `erk` spread `global_sparsity` over the layers with those one-shot allocations
(pruners.allocation)."""
from __future__ import annotations

import copy
from typing import Mapping

from torch import nn

from pruners.allocation import erk_masks, lamp_masks
from pruners.base import Masks, PruneContext, PruneResult, float_setting, str_setting
from pruners.layers import prunable_layers
from pruners.masking import apply_masks, global_masks, keep_mask
from pruners.registry import register


def layerwise_magnitude_masks(model: nn.Module, ratios: Mapping[str, float]) -> Masks:
    layers = prunable_layers(model)
    return {f"{name}.weight": keep_mask(layers[name].weight.abs(), r) for name, r in ratios.items()}


def global_magnitude_masks(model: nn.Module, names: list[str], ratio: float) -> Masks:
    layers = prunable_layers(model)
    return global_masks({n: layers[n].weight.detach().abs() for n in names}, ratio)


# magnitude_scope -> how global_sparsity is spread over the layers ("layer" uses the per-layer ratios).
GLOBAL_ALLOCATIONS = {"global": global_magnitude_masks, "lamp": lamp_masks, "erk": erk_masks}
SCOPES = ("layer", *GLOBAL_ALLOCATIONS)


@register("magnitude")
def magnitude(
    model: nn.Module, ratios: Mapping[str, float], settings: Mapping[str, object], ctx: PruneContext
) -> PruneResult:
    pruned = copy.deepcopy(model)
    scope = str_setting(settings, "magnitude_scope", "layer")
    if scope in GLOBAL_ALLOCATIONS:
        # One target over every prunable layer (the article's recipe ranks them together).
        names = list(ratios) or list(prunable_layers(pruned))
        masks = GLOBAL_ALLOCATIONS[scope](pruned, names, float_setting(settings, "global_sparsity"))
    else:
        masks = layerwise_magnitude_masks(pruned, ratios)
    apply_masks(pruned, masks)
    return PruneResult(model=pruned, masks=masks)
