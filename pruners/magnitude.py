"""Magnitude pruning: |w| importance, masks. `magnitude_scope` picks the allocation: `layer`
drops the smallest |w| of each layer at that layer's sampled ratio; `global` drops the smallest
|w| across all prunable layers at `global_sparsity` (the article's recipe, done right: exact
counts, masks kept through fine-tuning); `lamp` and `erk` spread `global_sparsity` over the
layers with those one-shot allocations (pruners.allocation)."""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from pruners.allocation import erk_masks, global_masks, layer_masks
from pruners.base import Masks, PruneContext, PruneResult
from pruners.importance import lamp_scores, magnitude_scores, weight_scores
from pruners.layers import prunable_layers
from pruners.masking import apply_masks
from pruners.registry import register
from pruners.settings import RATIO, MethodSettings, setting

# magnitude_scope -> (importance, allocation) spreading global_sparsity over the layers
# ("layer" takes the per-layer ratios instead).
GLOBAL_ALLOCATIONS = {"global": (magnitude_scores, global_masks), "lamp": (lamp_scores, global_masks),
                      "erk": (magnitude_scores, erk_masks)}
SCOPES = ("layer", *GLOBAL_ALLOCATIONS)


@dataclass(frozen=True)
class MagnitudeSettings(MethodSettings):
    magnitude_scope: str = setting("layer", search=("layer", "global"), kind="choice", accepted=SCOPES,
                                   help="magnitude variants: layer (per-layer ratios), global (one threshold), "
                                   "lamp (Lee et al. 2021) or erk (Evci et al. 2020) allocations of global_sparsity")
    global_sparsity: float = setting(0.5, search=(0.2, 0.95), accepted=RATIO, when=("magnitude_scope", tuple(GLOBAL_ALLOCATIONS)),
                                     help="global magnitude sparsity range (scopes global, lamp, erk)")

    def uses_layer_ratios(self) -> bool:
        return self.magnitude_scope not in GLOBAL_ALLOCATIONS  # one global target, spread by the allocation


def layerwise_magnitude_masks(model: nn.Module, ratios: Mapping[str, float]) -> Masks:
    """The smallest |w| of each layer of `ratios`, at its ratio (the `layer` scope)."""
    return layer_masks(weight_scores(model, ratios), ratios)


@register("magnitude", settings=MagnitudeSettings, order=0)
def magnitude(model: nn.Module, ratios: Mapping[str, float], settings: MagnitudeSettings, ctx: PruneContext) -> PruneResult:
    pruned = copy.deepcopy(model)
    if settings.magnitude_scope in GLOBAL_ALLOCATIONS:
        score, allocate = GLOBAL_ALLOCATIONS[settings.magnitude_scope]
        # One target over every prunable layer (the article's recipe ranks them together).
        names = list(ratios) or list(prunable_layers(pruned))
        masks = allocate(weight_scores(pruned, names, score), settings.global_sparsity)
    else:
        masks = layerwise_magnitude_masks(pruned, ratios)
    apply_masks(pruned, masks)
    return PruneResult(model=pruned, masks=masks)
