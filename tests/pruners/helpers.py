"""Shared test helpers for the pruner property tests."""
from __future__ import annotations

from torch import nn


def randomize_bn_(model: nn.Module) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine terms, in place, so a wrong channel slice or a
    missed coupled BN changes the outputs (the defaults 0/1 would hide it). Returns the model in
    eval mode."""
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        nn.init.uniform_(bn.running_mean, -0.5, 0.5)
        nn.init.uniform_(bn.running_var, 0.5, 2.0)
        nn.init.uniform_(bn.weight, 0.5, 1.5)
        nn.init.uniform_(bn.bias, -0.2, 0.2)
    return model.eval()
