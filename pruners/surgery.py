"""Structural surgery: physically remove output channels with Torch-Pruning's DependencyGraph.

Removing a conv's output channel also removes its BatchNorm entry, the next layer's input
channel (for a Linear after flatten: the matching block of input columns) and, in residual
networks, the same channel of every layer coupled to it by an addition. The library finds and
prunes that whole group; the caller only says which channels of which layer to drop.

Indices always refer to the ORIGINAL numbering. That holds because each module's output
dimension is pruned exactly once: a layer whose outputs are coupled to an earlier requested
layer is carried by that layer's group (and must ask for the same channels), and a group only
touches the *input* dimension of the layers downstream of it, never their outputs.
"""
from __future__ import annotations

import copy
from typing import Mapping, Sequence

import torch
import torch_pruning as tp
from torch import nn

from pruners.layers import PRUNABLE_TYPES


def out_channels(module: nn.Module) -> int:
    return module.out_channels if isinstance(module, nn.Conv2d) else module.out_features


def keep_to_drop(kept: Sequence[int], n: int) -> list[int]:
    kept_set = set(kept)
    return [i for i in range(n) if i not in kept_set]


def drop_to_keep(drop: Sequence[int], n: int) -> list[int]:
    return keep_to_drop(drop, n)  # the complement, either way round


def _pruning_fn(module: nn.Module):
    if isinstance(module, nn.Conv2d):
        return tp.prune_conv_out_channels
    if isinstance(module, nn.Linear):
        return tp.prune_linear_out_channels
    raise TypeError(f"cannot remove output channels of {type(module).__name__}")


def _build_graph(model: nn.Module, example_input: torch.Tensor) -> tp.DependencyGraph:
    # Tracing needs autograd, and Torch-Pruning leaves the model in eval mode: restore the mode
    # so a caller training the model is not silently switched (eval also keeps BN running
    # statistics from being updated by the example input).
    modes = [(m, m.training) for m in model.modules()]
    with torch.enable_grad():
        DG = tp.DependencyGraph().build_dependency(model, example_inputs=example_input, verbose=False)
    for m, training in modes:
        m.training = training
    return DG


def _coupled_names(DG: tp.DependencyGraph, group, names_of: Mapping[nn.Module, str]) -> list[str]:
    """Prunable layers whose OUTPUT channels the group removes (the root included)."""
    return [
        names_of[dep.target.module]
        for dep, _ in group
        if dep.target.module in names_of and DG.is_out_channel_pruning_fn(dep.handler)
    ]


def _plan(model: nn.Module, names: Sequence[str], example_input: torch.Tensor):
    """Build the graph and, in model order, the coupling of the requested layers: each root maps
    to the prunable layers (itself first) whose outputs its group carries, requested or not."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise KeyError(f"no such modules: {missing}")
    if not names:  # nothing to couple or remove: no graph to build (some models have none, see pruners.graph)
        return None, modules, {}
    DG = _build_graph(model, example_input)
    names_of = {m: n for n, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)}
    wanted = set(names)
    roots: dict[str, list[str]] = {}
    carried: set[str] = set()
    for name in (n for n in modules if n in wanted):  # model order, so roots come first
        if name in carried:
            continue
        module = modules[name]
        group = DG.get_pruning_group(module, _pruning_fn(module), idxs=[0])  # structure only
        members = _coupled_names(DG, group, names_of)
        roots[name] = [name] + [n for n in members if n != name]
        carried.update(members)
    return DG, modules, roots


def coupled_layers(
    model: nn.Module, names: Sequence[str], example_input: torch.Tensor
) -> dict[str, list[str]]:
    """Group `names` into sets whose output channels can only be removed together (residual
    additions). Keys are the first of `names` in each set, in model order; values list every
    prunable layer of the set (the key first), including coupled layers not in `names`."""
    return _plan(model, names, example_input)[2]


def remove_channels(
    model: nn.Module, drop: Mapping[str, Sequence[int]], example_input: torch.Tensor
) -> nn.Module:
    """Remove, in place, the listed output channels (original numbering) of each Conv2d or hidden
    Linear in `drop`, with everything that depends on them. Coupled layers must list the same
    channels; the group of the first one removes them all. Returns `model`."""
    DG, modules, roots = _plan(model, list(drop), example_input)
    for root, members in roots.items():
        module = modules[root]
        idxs = sorted(set(int(i) for i in drop[root]))
        for other in (m for m in members[1:] if m in drop):
            if sorted(set(int(i) for i in drop[other])) != idxs:
                raise ValueError(
                    f"{other!r} shares its output channels with {root!r} (e.g. a residual "
                    "addition), so they can only be pruned together: give both the same indices"
                )
        if not idxs:
            continue
        n = out_channels(module)
        if idxs[0] < 0 or idxs[-1] >= n:
            raise IndexError(f"{root!r} has {n} output channels; asked to drop {idxs}")
        # A fresh group per root: get_pruning_group recomputes index mappings (concat offsets,
        # flatten strides) from the current shapes, after the earlier roots were pruned.
        group = DG.get_pruning_group(module, _pruning_fn(module), idxs=idxs)
        if not DG.check_pruning_group(group):
            raise ValueError(
                f"cannot drop {len(idxs)} of {n} channels of {root!r}: some layer in its "
                "dependency group would be left with no channels"
            )
        group.prune()
    return model


def rebuild(
    baseline: nn.Module, kept_channels: Mapping[str, Sequence[int]], example_input: torch.Tensor
) -> nn.Module:
    """Rebuild a structurally pruned model exactly from the baseline and its kept indices."""
    model = copy.deepcopy(baseline)
    modules = dict(model.named_modules())
    drop = {n: keep_to_drop(kept, out_channels(modules[n])) for n, kept in kept_channels.items()}
    return remove_channels(model, drop, example_input)
