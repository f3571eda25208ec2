"""Which layers can be pruned, and what kind each one is (the search bounds depend on it)."""
from __future__ import annotations

from torch import nn

PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Conv2d and Linear modules by qualified name, in definition order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)}


def layer_kinds(model: nn.Module) -> dict[str, str]:
    """Each prunable layer's kind: "conv_early" (the first conv), "conv", "fc" (a hidden Linear)
    or "classifier" (the last Linear). Kinds drive the depth-aware bounds: first conv
    conservative, hidden FC aggressive, the final classifier careful."""
    layers = prunable_layers(model)
    convs = [n for n, m in layers.items() if isinstance(m, nn.Conv2d)]
    linears = [n for n, m in layers.items() if isinstance(m, nn.Linear)]
    kinds = {}
    for name in layers:
        if name in convs:
            kinds[name] = "conv_early" if name == convs[0] else "conv"
        else:
            kinds[name] = "classifier" if name == linears[-1] else "fc"
    return kinds


def conv_depth(model: nn.Module) -> dict[str, float]:
    """Relative depth in [0, 1] of every conv, for depth schedules on deep models."""
    convs = [n for n, m in prunable_layers(model).items() if isinstance(m, nn.Conv2d)]
    if len(convs) == 1:
        return {convs[0]: 0.0}
    return {n: i / (len(convs) - 1) for i, n in enumerate(convs)}
