"""Magnitude pruning: drop the smallest |w| in each layer at that layer's ratio, or, with
`magnitude_scope = "global"`, the smallest |w| across all prunable layers at `global_sparsity`
(the article's recipe, done right: exact counts, masks kept through fine-tuning)."""
from __future__ import annotations

import copy
from typing import Mapping

import torch
from torch import nn

from pruners.base import Masks, PruneContext, PruneResult, float_setting, str_setting
from pruners.layers import prunable_layers
from pruners.masking import apply_masks, keep_mask
from pruners.registry import register


def layerwise_magnitude_masks(model: nn.Module, ratios: Mapping[str, float]) -> Masks:
    layers = prunable_layers(model)
    return {f"{name}.weight": keep_mask(layers[name].weight.abs(), r) for name, r in ratios.items()}


def global_magnitude_masks(model: nn.Module, names: list[str], ratio: float) -> Masks:
    layers = prunable_layers(model)
    weights = [layers[n].weight.detach().abs() for n in names]
    flat_mask = keep_mask(torch.cat([w.flatten() for w in weights]), ratio)
    masks, start = {}, 0
    for name, w in zip(names, weights):
        masks[f"{name}.weight"] = flat_mask[start : start + w.numel()].view_as(w)
        start += w.numel()
    return masks


@register("magnitude")
def magnitude(
    model: nn.Module, ratios: Mapping[str, float], settings: Mapping[str, object], ctx: PruneContext
) -> PruneResult:
    pruned = copy.deepcopy(model)
    if str_setting(settings, "magnitude_scope", "layer") == "global":
        # The global variant ranks every prunable layer together (the article's recipe).
        names = list(ratios) or list(prunable_layers(pruned))
        masks = global_magnitude_masks(pruned, names, float_setting(settings, "global_sparsity"))
    else:
        masks = layerwise_magnitude_masks(pruned, ratios)
    apply_masks(pruned, masks)
    return PruneResult(model=pruned, masks=masks)
