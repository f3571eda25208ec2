"""One-shot allocations of a global sparsity over layers, for magnitude pruning: the strong
baselines a search has to beat, and choices inside the search (`magnitude_scope`).

- LAMP (Lee et al., ICLR 2021): a weight's score is w^2 divided by the sum of w'^2 over the
  weights of its layer that are at least as large; one global threshold on the scores.
  Every layer keeps its largest weight (its score is 1), so no layer is cut off entirely.
- ERK (Evci et al., 2020, "Rigging the lottery"): a layer's density is proportional to
  sum(shape) / prod(shape) (for a linear layer (n_in + n_out) / (n_in * n_out), for a conv the
  kernel-size form), scaled to the target count; a layer whose density would exceed 1 stays
  dense and the excess is redistributed over the others. Within a layer, the smallest |w| go.

Both return masks that remove exactly round(sparsity * total) weights over the given layers.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from pruners.base import Masks
from pruners.layers import prunable_layers
from pruners.masking import global_masks, keep_mask


def lamp_scores(weight: torch.Tensor) -> torch.Tensor:
    """LAMP score of every entry: w_u^2 / sum over v >= u of w_v^2, with the layer's weights
    sorted by magnitude ascending (ties by position, so the result is deterministic)."""
    sq = weight.detach().flatten().double() ** 2
    order = torch.argsort(sq, stable=True)
    sorted_sq = sq[order]
    # Suffix sums: the denominator of entry u is the sum of every entry at or above it.
    suffix = torch.flip(torch.cumsum(torch.flip(sorted_sq, [0]), 0), [0])
    scores_sorted = torch.where(suffix > 0, sorted_sq / suffix.clamp_min(torch.finfo(torch.float64).tiny),
                                torch.zeros_like(sorted_sq))
    scores = torch.empty_like(sq)
    scores[order] = scores_sorted
    return scores.view_as(weight)


def lamp_masks(model: nn.Module, names: list[str], sparsity: float) -> Masks:
    """One global threshold on LAMP scores over the layers `names`."""
    layers = prunable_layers(model)
    return global_masks({n: lamp_scores(layers[n].weight) for n in names}, sparsity)


def erk_keep_counts(shapes: Mapping[str, tuple[int, ...]], sparsity: float) -> dict[str, int]:
    """Weights kept per layer under ERK, summing exactly to round((1 - sparsity) * total),
    never more than a layer holds."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    target = sum(sizes.values()) - int(round(sparsity * sum(sizes.values())))
    raw = {n: sum(s) / math.prod(s) for n, s in shapes.items()}
    dense: set[str] = set()
    while True:
        # Scale the ERK densities of the non-dense layers so they keep what the dense ones leave.
        left = target - sum(sizes[n] for n in dense)
        scaled = {n: left * raw[n] / sum(raw[m] * sizes[m] for m in raw if m not in dense)
                  for n in raw if n not in dense}
        over = {n for n, d in scaled.items() if d > 1.0}
        if not over:
            break
        dense |= over
    exact = {**{n: float(sizes[n]) for n in dense}, **{n: d * sizes[n] for n, d in scaled.items()}}
    return _round_to_total(exact, sizes, target)


def _round_to_total(exact: Mapping[str, float], sizes: Mapping[str, int], target: int) -> dict[str, int]:
    """Largest-remainder rounding: floor every count, then give the missing units to the
    layers with the largest fractional parts that still have room."""
    counts = {n: min(sizes[n], math.floor(x)) for n, x in exact.items()}
    missing = target - sum(counts.values())
    for n in sorted(exact, key=lambda n: (counts[n] - exact[n], n)):
        if missing <= 0:
            break
        if counts[n] < sizes[n]:
            counts[n] += 1
            missing -= 1
    return counts


def erk_masks(model: nn.Module, names: list[str], sparsity: float) -> Masks:
    """ERK densities per layer, the smallest |w| of each layer removed to meet them."""
    layers = prunable_layers(model)
    counts = erk_keep_counts({n: tuple(layers[n].weight.shape) for n in names}, sparsity)
    masks = {}
    for name in names:
        w = layers[name].weight.detach().abs()
        n_drop = w.numel() - counts[name]
        masks[f"{name}.weight"] = keep_mask(w, n_drop / w.numel()) if n_drop < w.numel() else torch.zeros_like(
            w, dtype=torch.bool)
    return masks
