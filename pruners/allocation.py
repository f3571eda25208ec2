"""Allocation: how many weights or channels go, and from which layers, given importance scores
(pruners.importance; score dicts keyed by layer name). The lowest scores go; ties go to the
lower position, so every result is deterministic.

Weights (returns masks keyed by parameter name, True = kept):
- `keep_mask`, `keep_mask_within`: one layer's lowest round(ratio * n) (of its survivors);
- `layer_masks`: each layer at its own sampled ratio;
- `global_masks`: one threshold over every layer together (on magnitudes: global magnitude; on
  LAMP scores: LAMP, whose per-layer normalization keeps every layer's largest weight);
- `erk_masks` (Evci et al., 2020, "Rigging the lottery"): a layer's density is proportional to
  sum(shape) / prod(shape), scaled to the target count; a layer whose density would exceed 1
  stays dense and the excess is redistributed over the others.
Global allocations remove exactly round(sparsity * total) weights over the given layers.

Channels (filters; returns each group root's dropped output channels, original numbering). A
decision is made per pruners.surgery.ChannelGroup: layers tied by a residual addition lose the
same channels. `filter_groups` is the one place that says which layers lose filters.
- `layer_channel_drop`: each group at its root's ratio, at least one channel kept;
- `global_channel_drop`: each group's scores divided by their mean (scores of different layers
  live on different scales), then one threshold across all groups.
"""
from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from pruners.base import Masks
from pruners.graph import filter_layers
from pruners.surgery import ChannelGroup, channel_groups


def _check_ratio(ratio: float) -> None:
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio {ratio} outside [0, 1)")


# ---- weights ------------------------------------------------------------------------------------

def keep_mask(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """Drop exactly round(ratio * n) entries with the lowest score (ties broken by position,
    so the result is deterministic). Every kept score is >= every dropped one."""
    _check_ratio(ratio)
    flat = scores.detach().flatten()
    n_drop = int(round(ratio * flat.numel()))
    mask = torch.ones_like(flat, dtype=torch.bool)
    if n_drop:
        order = torch.argsort(flat, stable=True)
        mask[order[:n_drop]] = False
    return mask.view_as(scores)


def keep_mask_within(scores: torch.Tensor, previous: torch.Tensor, ratio: float) -> torch.Tensor:
    """Drop round(ratio * survivors) of the entries still kept in `previous`; entries already
    dropped stay dropped, so masks only shrink."""
    survivors = int(previous.sum())
    n_drop = int(round(ratio * survivors))
    # Already-dropped entries rank first, so they are re-dropped and never revived.
    lowest = torch.finfo(scores.dtype).min
    ranked = torch.where(previous, scores.detach(), torch.full_like(scores, lowest)).flatten()
    mask = torch.ones_like(ranked, dtype=torch.bool)
    n_total = previous.numel() - survivors + n_drop
    if n_total:
        mask[torch.argsort(ranked, stable=True)[:n_total]] = False
    return mask.view_as(scores)


def layer_masks(scores: Mapping[str, torch.Tensor], ratios: Mapping[str, float]) -> Masks:
    """Each layer of `ratios` loses its own ratio of its weights, the lowest scored."""
    return {f"{name}.weight": keep_mask(scores[name], r) for name, r in ratios.items()}


def global_masks(scores: Mapping[str, torch.Tensor], ratio: float) -> Masks:
    """One threshold over every layer's scores together (layer name -> scores shaped like its
    weight): drops exactly round(ratio * total) of the lowest, wherever they are."""
    flat = keep_mask(torch.cat([s.flatten() for s in scores.values()]), ratio)
    masks, start = {}, 0
    for name, s in scores.items():
        masks[f"{name}.weight"] = flat[start : start + s.numel()].view_as(s)
        start += s.numel()
    return masks


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


def erk_masks(scores: Mapping[str, torch.Tensor], sparsity: float) -> Masks:
    """ERK counts per layer (from the scores' shapes, which are the weights'), the lowest scores
    of each layer removed to meet them."""
    counts = erk_keep_counts({n: tuple(s.shape) for n, s in scores.items()}, sparsity)
    masks = {}
    for name, s in scores.items():
        n_drop = s.numel() - counts[name]
        masks[f"{name}.weight"] = (keep_mask(s, n_drop / s.numel()) if n_drop < s.numel()
                                   else torch.zeros_like(s, dtype=torch.bool))
    return masks


# ---- channels -----------------------------------------------------------------------------------

def filter_groups(model: nn.Module, names: Sequence[str] | Mapping[str, float], example_input: torch.Tensor
                  ) -> list[ChannelGroup]:
    """The groups of output channels a filter method decides on: the layers of `names` that may
    lose filters (pruners.graph.filter_layers: never the classifier, whose outputs are the
    classes, nor a layer the dependency graph cannot prune safely), grouped with the layers a
    residual addition or concatenation ties to them. Every filter method asks this one function."""
    return channel_groups(model, filter_layers(model, names, example_input), example_input)


def drop_lowest(scores: torch.Tensor, ratio: float) -> list[int]:
    """round(ratio * n) channels with the lowest scores, at least one kept; ties go to the lower
    index. Sorted."""
    _check_ratio(ratio)
    n = scores.numel()
    n_drop = min(int(round(ratio * n)), n - 1)
    return sorted(torch.argsort(scores, stable=True)[:n_drop].tolist())


def layer_channel_drop(groups: Sequence[ChannelGroup], scores: Mapping[str, torch.Tensor],
                       ratios: Mapping[str, float]) -> dict[str, list[int]]:
    """Each group drops its root's ratio of its channels, the lowest of `scores[root]` (one score
    per root channel; the members follow)."""
    return {g.root: drop_lowest(scores[g.root], float(ratios[g.root])) for g in groups}


def _per_layer_normalized(scores: torch.Tensor) -> torch.Tensor:
    # Divided by the layer's mean (Torch-Pruning's "mean" normalizer): an FPGM distance or a
    # Taylor score grows with the layer's width and weight scale, so raw values would empty the
    # layers with small numbers first. An all-zero layer stays at zero.
    s = scores.detach().double().clone()  # a copy: the caller's scores stay as they were
    mean = s.mean()
    return s / mean if mean > 0 else s


def global_channel_drop(groups: Sequence[ChannelGroup], scores: Mapping[str, torch.Tensor],
                        fraction: float) -> dict[str, list[int]]:
    """One threshold across layers: of all the groups' channels together (each group's channel
    counted once, however many layers it spans), round(fraction * total) with the lowest
    per-layer-normalized scores go, every group keeping at least its best channel."""
    _check_ratio(fraction)
    if not groups:
        return {}
    ranked = []
    for g in groups:
        s = _per_layer_normalized(scores[g.root])
        s[torch.argsort(s, stable=True)[-1]] = math.inf  # the group's best channel is never reached
        ranked.append(s)
    sizes = [g.size for g in groups]
    n_drop = min(int(round(fraction * sum(sizes))), sum(sizes) - len(groups))
    starts = list(itertools.accumulate(sizes, initial=0))
    drop: dict[str, list[int]] = {g.root: [] for g in groups}
    # Stable: ties go to the earlier group (model order), then the lower channel.
    for flat in sorted(torch.argsort(torch.cat(ranked), stable=True)[:n_drop].tolist()):
        i = bisect.bisect_right(starts, flat) - 1
        drop[groups[i].root].append(flat - starts[i])
    return drop


def ratios_of(masks: Masks) -> dict[str, float]:
    """The per-layer ratios an allocation chose: layer name -> fraction of its weights dropped.
    Pruning each layer at its ratio (layer_masks) drops exactly as many of its lowest scores."""
    return {key.removesuffix(".weight"): 1.0 - float(m.sum()) / m.numel() for key, m in masks.items()}
