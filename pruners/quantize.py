"""Symmetric per-output-channel int8 weight quantization (post-training, in place).

scale_c = max|w_c| / 127 for output channel c; w := round(w / scale_c) * scale_c with the
integer clamped to [-127, 127]. Afterwards every weight is an int8 value times its channel's
scale, so the stored model is the int8 values plus one fp32 scale per channel. Zeros map to
exactly 0, so pruning masks survive quantization.

`fake_quantize` is the same grid without storing anything: quantization-aware fine-tuning runs
every forward on fake-quantized weights and applies the gradient to the float ones (the
straight-through estimator), so the weights learn to sit well on the grid.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

QMAX = 127  # symmetric: -128 is left out so that the grid is the same on both sides


def int8_scales(weight: torch.Tensor) -> torch.Tensor:
    amax = weight.detach().abs().flatten(1).amax(dim=1)
    # An all-zero channel (e.g. fully pruned) has no range; any scale keeps it at zero.
    return torch.where(amax > 0, amax / QMAX, torch.ones_like(amax))


def _per_channel(scales: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return scales.view(-1, *([1] * (weight.dim() - 1)))


def int8_values(weight: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """The stored int8 integers of a (quantized) weight."""
    q = torch.round(weight.detach() / _per_channel(scales, weight)).clamp(-QMAX, QMAX)
    return q.to(torch.int8)


def fake_quantize(weight: torch.Tensor) -> torch.Tensor:
    """The int8-grid value of every weight (what quantize_int8_ would store), as floats."""
    s = _per_channel(int8_scales(weight), weight)
    return torch.round(weight.detach() / s).clamp(-QMAX, QMAX) * s


def quantize_int8_(model: nn.Module, param_names: Iterable[str]) -> dict[str, torch.Tensor]:
    """Snap the named weights onto their int8 grid in place; returns name -> per-channel scales."""
    params = dict(model.named_parameters())
    scales = {}
    with torch.no_grad():
        for name in param_names:
            w = params[name]
            scales[name] = int8_scales(w)
            w.copy_(fake_quantize(w).to(w.dtype))
    return scales
