"""FPGM: filter pruning via geometric median (He et al., CVPR 2019).

A filter close to the geometric median of its layer's filters is the one the others can best
stand in for, so FPGM removes the filters with the SMALLEST summed Euclidean distance to the
other filters of the same layer (the source article kept those and removed the outliers).
The criterion is the paper's: raw weights, one layer at a time (Torch-Pruning's FPGMImportance
is a group variant on |w|). Filters are then physically removed (pruners.surgery), giving a
smaller dense model with fewer FLOPs. The final classifier is never filter-pruned: its outputs
are the classes.
"""
from __future__ import annotations

import copy
from typing import Mapping

import torch
from torch import nn

from pruners.base import PruneContext, PruneResult
from pruners.graph import layer_plan
from pruners.layers import layer_kinds, prunable_layers
from pruners.registry import register
from pruners.settings import NoSettings
from pruners.surgery import coupled_layers, drop_to_keep, out_channels, remove_channels

FILTER_KINDS = ("conv_early", "conv", "fc")


def fpgm_scores(weight: torch.Tensor) -> torch.Tensor:
    """score_i = sum_j ||w_i - w_j||_2 over the filters (rows) of one layer."""
    flat = weight.detach().flatten(1).double()  # float64: near-ties rank the same everywhere
    # The exact (non-matmul) distance, which is 0 for i == j, so the sum is over the others.
    return torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist").sum(dim=1)


def fpgm_drop_indices(weight: torch.Tensor, ratio: float) -> list[int]:
    """round(ratio * n_filters) filters nearest the geometric median, at least one kept;
    ties go to the lower index."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio {ratio} outside [0, 1)")
    n = weight.shape[0]
    n_drop = min(int(round(ratio * n)), n - 1)
    order = torch.argsort(fpgm_scores(weight), stable=True)
    return sorted(order[:n_drop].tolist())


def filter_layers(model: nn.Module, names, example_input: torch.Tensor | None = None) -> list[str]:
    """The layers of `names` that lose whole filters: not the classifier and, given an example
    input, not a layer the dependency graph cannot prune safely (pruners.graph: left dense)."""
    kinds = layer_kinds(model, example_input)
    dense = {} if example_input is None else layer_plan(model, example_input).dense
    return [n for n in names if kinds.get(n) in FILTER_KINDS and n not in dense]


def fpgm_prune_(
    model: nn.Module, ratios: Mapping[str, float], example_input: torch.Tensor
) -> dict[str, list[int]]:
    """Filter-prune `model` in place at `ratios` (filter layers only, classifier skipped).
    Returns the kept original output-channel indices of every pruned layer."""
    layers = prunable_layers(model)
    names = filter_layers(model, ratios, example_input)
    # Layers coupled by a residual addition share their output channels: score the first one
    # of each set (the group's root) and let the group carry the others.
    drop: dict[str, list[int]] = {}
    for root, members in coupled_layers(model, names, example_input).items():
        # All criteria come from the original weights, before any surgery.
        idxs = fpgm_drop_indices(layers[root].weight, float(ratios[root]))
        drop.update({m: idxs for m in members})
    kept = {n: drop_to_keep(d, out_channels(layers[n])) for n, d in drop.items()}
    remove_channels(model, drop, example_input)
    return kept


@register("fpgm", structural=True, masked=False)
def fpgm(model: nn.Module, ratios: Mapping[str, float], settings: NoSettings, ctx: PruneContext) -> PruneResult:
    pruned = copy.deepcopy(model)
    kept = fpgm_prune_(pruned, ratios, ctx.example_input)
    return PruneResult(model=pruned, masks={}, kept_channels=kept)
