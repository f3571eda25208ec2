"""Magnitude pruning: drop the smallest |w| in each layer at that layer's ratio, or, with
`magnitude_scope = "global"`, the smallest |w| across all prunable layers at `global_sparsity`
(the article's recipe, done right: exact counts, masks kept through fine-tuning). The scopes
`lamp` and `erk` spread `global_sparsity` over the layers with those one-shot allocations
(pruners.allocation)."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Mapping

from torch import nn

from pruners.allocation import erk_masks, lamp_masks
from pruners.base import Masks, PruneContext, PruneResult
from pruners.layers import prunable_layers
from pruners.masking import apply_masks, global_masks, keep_mask
from pruners.registry import register
from pruners.settings import RATIO, MethodSettings, setting


def layerwise_magnitude_masks(model: nn.Module, ratios: Mapping[str, float]) -> Masks:
    layers = prunable_layers(model)
    return {f"{name}.weight": keep_mask(layers[name].weight.abs(), r) for name, r in ratios.items()}


def global_magnitude_masks(model: nn.Module, names: list[str], ratio: float) -> Masks:
    layers = prunable_layers(model)
    return global_masks({n: layers[n].weight.detach().abs() for n in names}, ratio)


# magnitude_scope -> how global_sparsity is spread over the layers ("layer" uses the per-layer ratios).
GLOBAL_ALLOCATIONS = {"global": global_magnitude_masks, "lamp": lamp_masks, "erk": erk_masks}
SCOPES = ("layer", *GLOBAL_ALLOCATIONS)


@dataclass(frozen=True)
class MagnitudeSettings(MethodSettings):
    magnitude_scope: str = setting("layer", search=("layer", "global"), kind="choice", accepted=SCOPES,
                                   help="magnitude variants: layer (per-layer ratios), global (one threshold), "
                                   "lamp (Lee et al. 2021) or erk (Evci et al. 2020) allocations of global_sparsity; "
                                   "a comma-separated list")
    global_sparsity: float = setting(0.5, search=(0.2, 0.95), accepted=RATIO, when=("magnitude_scope", tuple(GLOBAL_ALLOCATIONS)),
                                     help="global magnitude sparsity range (scopes global, lamp, erk)")

    def uses_layer_ratios(self) -> bool:
        return self.magnitude_scope not in GLOBAL_ALLOCATIONS  # one global target, spread by the allocation


@register("magnitude", settings=MagnitudeSettings)
def magnitude(model: nn.Module, ratios: Mapping[str, float], settings: MagnitudeSettings, ctx: PruneContext) -> PruneResult:
    pruned = copy.deepcopy(model)
    if settings.magnitude_scope in GLOBAL_ALLOCATIONS:
        # One target over every prunable layer (the article's recipe ranks them together).
        names = list(ratios) or list(prunable_layers(pruned))
        masks = GLOBAL_ALLOCATIONS[settings.magnitude_scope](pruned, names, settings.global_sparsity)
    else:
        masks = layerwise_magnitude_masks(pruned, ratios)
    apply_masks(pruned, masks)
    return PruneResult(model=pruned, masks=masks)
