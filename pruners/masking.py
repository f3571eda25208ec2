"""Masks: scoring is kept apart from masking (as in torch.nn.utils.prune).

A mask is a bool tensor shaped like the weight, True where the weight is kept. Masks are keyed
by parameter name (`"conv1.weight"`), so they save and reload with a plain dict.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import nn

from pruners.base import Masks


def keep_mask(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """Drop exactly round(ratio * n) entries with the lowest score (ties broken by position,
    so the result is deterministic). Every kept score is >= every dropped one."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio {ratio} outside [0, 1)")
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


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Zero the pruned weights in place. Multiplying by 0 gives an exact zero."""
    bind_masks(model, masks)()


def bind_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> Callable[[], None]:
    """`apply_masks` for a training loop: pairs each parameter with its mask, cast to the
    parameter's dtype and device, once; each call is then one in-place multiply per layer."""
    params = dict(model.named_parameters())
    pairs = [(params[name], mask.to(device=params[name].device, dtype=params[name].dtype))
             for name, mask in masks.items()]

    def apply() -> None:
        with torch.no_grad():
            for param, mask in pairs:
                param.mul_(mask)

    return apply



def global_masks(scores: Mapping[str, torch.Tensor], ratio: float) -> Masks:
    """One threshold over every layer's scores together (layer name -> scores shaped like its
    weight): drops exactly round(ratio * total) of the lowest, wherever they are."""
    flat = keep_mask(torch.cat([s.flatten() for s in scores.values()]), ratio)
    masks, start = {}, 0
    for name, s in scores.items():
        masks[f"{name}.weight"] = flat[start : start + s.numel()].view_as(s)
        start += s.numel()
    return masks
