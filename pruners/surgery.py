"""Application, structural: physically remove output channels with Torch-Pruning's
DependencyGraph (the unstructured counterpart, masks, is pruners.masking). The result is a
smaller dense model with fewer FLOPs.

Removing a conv's output channel also removes its BatchNorm entry, the next layer's input
channel (for a Linear after flatten: the matching block of input columns) and, in residual
networks, the same channel of every layer coupled to it by an addition. The library finds and
prunes that whole group; the caller only says which channels of which layer to drop.

Indices always refer to the ORIGINAL numbering. A group has one root (the first requested layer
in model order that no earlier root carries); the root chooses channels, and every other layer
whose outputs the group removes (a member) loses the channels Torch-Pruning's index mapping ties
to them: the same indices through a residual addition, shifted ones through a concatenation. A
member can belong to several groups: a residual addition onto a concatenation of two convs ties
the first half of its channels to one conv and the second half to the other. Each root's group
is built afresh when it is pruned, so the library maps original root indices through the
current (already smaller) shapes.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn

from pruners.layers import PRUNABLE_TYPES


def out_channels(module: nn.Module) -> int:
    return module.out_channels if isinstance(module, nn.Conv2d) else module.out_features


def complement(idxs: Sequence[int], n: int) -> list[int]:
    """The channels of range(n) not in `idxs`: kept -> dropped, and dropped -> kept."""
    taken = set(int(i) for i in idxs)
    return [i for i in range(n) if i not in taken]


keep_to_drop = drop_to_keep = complement  # the names read better where the direction matters


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


@dataclass(frozen=True)
class ChannelGroup:
    """The output channels that go together: the root's channel r takes member m's channel
    `members[m][r]` with it (the root maps to itself)."""

    root: str
    size: int  # the root's output channels
    members: dict[str, dict[int, int]]

    def drops(self, root_drop: Sequence[int]) -> dict[str, list[int]]:
        """Every member's channels (original numbering) removed with the root's `root_drop`."""
        return {m: sorted({mapping[r] for r in root_drop if r in mapping}) for m, mapping in self.members.items()}


def _mapping(group, names_of: Mapping[nn.Module, str], DG) -> dict[str, dict[int, int]]:
    out: dict[str, dict[int, int]] = {}
    for item in group.items:
        module = item.dep.target.module
        if module in names_of and DG.is_out_channel_pruning_fn(item.dep.handler):
            pairs = zip(item.root_idxs, item.idxs)
            out.setdefault(names_of[module], {}).update({int(r): int(i) for r, i in pairs if r is not None})
    return out


def _plan(model: nn.Module, names: Sequence[str], example_input: torch.Tensor):
    """Build the graph and, in model order, the channel groups of the requested layers."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise KeyError(f"no such modules: {missing}")
    if not names:  # nothing to couple or remove: no graph to build (some models have none, see pruners.graph)
        return None, modules, []
    DG = _build_graph(model, example_input)
    names_of = {m: n for n, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)}
    wanted = set(names)
    groups: list[ChannelGroup] = []
    carried: set[str] = set()
    for name in (n for n in modules if n in wanted):  # model order, so roots come first
        if name in carried:
            continue
        module = modules[name]
        size = out_channels(module)
        group = DG.get_pruning_group(module, _pruning_fn(module), idxs=list(range(size)))  # structure only
        members = _mapping(group, names_of, DG)
        members = {name: members.pop(name, {i: i for i in range(size)}), **members}  # the root first
        groups.append(ChannelGroup(name, size, members))
        carried.update(members)
    return DG, modules, groups


def channel_groups(model: nn.Module, names: Sequence[str], example_input: torch.Tensor) -> list[ChannelGroup]:
    """The groups whose roots are among `names` and that cover all of them, in model order."""
    return _plan(model, names, example_input)[2]


def coupled_layers(
    model: nn.Module, names: Sequence[str], example_input: torch.Tensor
) -> dict[str, list[str]]:
    """Group `names` into sets whose output channels can only be removed together (residual
    additions). Keys are the first of `names` in each set, in model order; values list every
    prunable layer of the set (the key first), including coupled layers not in `names`."""
    return {g.root: list(g.members) for g in channel_groups(model, names, example_input)}


def spread(groups: Sequence[ChannelGroup], root_drop: Mapping[str, Sequence[int]]) -> dict[str, list[int]]:
    """Every layer's removed channels, given what each group's root removes."""
    out: dict[str, set[int]] = {}
    for g in groups:
        for member, idxs in g.drops(root_drop.get(g.root, ())).items():
            out.setdefault(member, set()).update(idxs)
    return {m: sorted(idxs) for m, idxs in out.items()}


def remove_group_channels(
    model: nn.Module, groups: Sequence[ChannelGroup], root_drop: Mapping[str, Sequence[int]],
    example_input: torch.Tensor,
) -> dict[str, list[int]]:
    """Remove, in place, the channels each group's root drops (pruners.allocation's choice), with
    what every member loses along. Returns the kept original output channels of every layer of
    the groups: with the baseline, they rebuild the model (`rebuild`)."""
    modules = dict(model.named_modules())
    drop = spread(groups, root_drop)
    kept = {n: complement(d, out_channels(modules[n])) for n, d in drop.items()}  # before shapes change
    remove_channels(model, drop, example_input)
    return kept


def remove_channels(
    model: nn.Module, drop: Mapping[str, Sequence[int]], example_input: torch.Tensor
) -> nn.Module:
    """Remove, in place, the listed output channels (original numbering) of each Conv2d or hidden
    Linear in `drop`, with everything that depends on them. A layer coupled to an earlier one
    must list exactly the channels the coupling takes from it (see `spread`). Returns `model`."""
    DG, modules, groups = _plan(model, list(drop), example_input)
    roots = {g.root: sorted(set(int(i) for i in drop[g.root])) for g in groups}
    implied = spread(groups, roots)
    for name, idxs in drop.items():
        if sorted(set(int(i) for i in idxs)) != implied.get(name, []):
            root = next(g.root for g in groups if name in g.members)
            raise ValueError(
                f"{name!r} shares its output channels with {root!r} (e.g. a residual addition), so they "
                f"can only be pruned together: its channels {implied.get(name, [])} go with the ones {root!r} drops"
            )
    for root, idxs in roots.items():
        if not idxs:
            continue
        module = modules[root]
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
    drop = {n: complement(kept, out_channels(modules[n])) for n, kept in kept_channels.items()}
    return remove_channels(model, drop, example_input)
