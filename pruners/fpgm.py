"""FPGM: filter pruning via geometric median (He et al., CVPR 2019).

Importance: a filter close to the geometric median of its layer's filters is the one the others
can best stand in for, so FPGM removes the filters with the SMALLEST summed Euclidean distance to
the other filters of the same layer (pruners.importance.fpgm_scores; the source article kept
those and removed the outliers). Allocation: each layer at its sampled ratio; layers tied by a
residual addition follow their group's root. Application: the filters are physically removed
(pruners.surgery), giving a smaller dense model with fewer FLOPs. The final classifier is never
filter-pruned: its outputs are the classes.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import nn

from pruners.allocation import drop_lowest, filter_groups, layer_channel_drop
from pruners.base import PruneContext, PruneResult
from pruners.graph import nothing_to_prune
from pruners.importance import fpgm_scores, root_scores
from pruners.registry import register
from pruners.settings import NoSettings
from pruners.surgery import remove_group_channels


def fpgm_drop_indices(weight: torch.Tensor, ratio: float) -> list[int]:
    """round(ratio * n_filters) filters nearest the geometric median, at least one kept;
    ties go to the lower index."""
    return drop_lowest(fpgm_scores(weight), ratio)


def fpgm_prune_(
    model: nn.Module, ratios: Mapping[str, float], example_input: torch.Tensor
) -> dict[str, list[int]]:
    """Filter-prune `model` in place at `ratios` (filter layers only, classifier skipped).
    Returns the kept original output-channel indices of every pruned layer."""
    groups = filter_groups(model, ratios, example_input)
    # All criteria come from the original weights, before any surgery.
    root_drop = layer_channel_drop(groups, root_scores(model, groups, fpgm_scores), ratios)
    return remove_group_channels(model, groups, root_drop, example_input)


@register("fpgm", structural=True, masked=False, order=2)
def fpgm(model: nn.Module, ratios: Mapping[str, float], settings: NoSettings, ctx: PruneContext) -> PruneResult:
    pruned = copy.deepcopy(model)
    kept = fpgm_prune_(pruned, ratios, ctx.example_input)
    return PruneResult(model=pruned, masks={}, kept_channels=kept, notes=[] if kept else [nothing_to_prune("fpgm")])
