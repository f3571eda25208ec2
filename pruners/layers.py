"""Which layers can be pruned, and what kind each one is (the search bounds depend on it).

Given an example input, kinds and depth come from the model's dependency graph (pruners.graph):
the classifier is the layer producing the output, depth is the order the forward pass runs the
layers in. Without one, definition order stands in for it (true of the built-in models).
"""
from __future__ import annotations

import torch
from torch import nn

PRUNABLE_TYPES = (nn.Conv2d, nn.Linear)


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Conv2d and Linear modules by qualified name, in definition order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)}


def _order_and_classifiers(model: nn.Module, example_input: torch.Tensor | None) -> tuple[list[str], set[str]]:
    layers = prunable_layers(model)
    if example_input is not None:
        from pruners.graph import layer_plan

        plan = layer_plan(model, example_input)
        return list(plan.order), set(plan.classifiers)
    linears = [n for n, m in layers.items() if isinstance(m, nn.Linear)]
    return list(layers), set(linears[-1:])


def layer_kinds(model: nn.Module, example_input: torch.Tensor | None = None) -> dict[str, str]:
    """Each prunable layer's kind, in depth order: "conv_early" (the first conv), "conv", "fc" (a
    hidden Linear) or "classifier" (a layer producing the output). Kinds drive the depth-aware
    bounds: first conv conservative, hidden FC aggressive, the final classifier careful."""
    layers = prunable_layers(model)
    order, classifiers = _order_and_classifiers(model, example_input)
    convs = [n for n in order if isinstance(layers[n], nn.Conv2d) and n not in classifiers]
    kinds = {}
    for name in order:
        if name in classifiers:
            kinds[name] = "classifier"
        elif name in convs:
            kinds[name] = "conv_early" if name == convs[0] else "conv"
        else:
            kinds[name] = "fc"
    return kinds


def conv_depth(model: nn.Module, example_input: torch.Tensor | None = None) -> dict[str, float]:
    """Relative depth in [0, 1] of every (non-classifier) conv, for depth-aware bounds and schedules."""
    kinds = layer_kinds(model, example_input)
    convs = [n for n, k in kinds.items() if k in ("conv_early", "conv")]
    if len(convs) == 1:
        return {convs[0]: 0.0}
    return {n: i / (len(convs) - 1) for i, n in enumerate(convs)}
