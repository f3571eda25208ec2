"""Application, unstructured: a mask zeroes single weights (scoring and choosing live apart, in
pruners.importance and pruners.allocation, as in torch.nn.utils.prune).

A mask is a bool tensor shaped like the weight, True where the weight is kept. Masks are keyed
by parameter name (`"conv1.weight"`), so they save and reload with a plain dict. The model keeps
its shapes; fine-tuning re-applies the masks after every step so pruned weights stay exactly 0.
The structural counterpart, removing whole channels, is pruners.surgery.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn


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
