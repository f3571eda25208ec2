"""What the dependency graph says about any model: the order its prunable layers run in, which of
them produce the output (the classifier), and which cannot lose output channels safely.

Nothing here is per-model code: the classifier is whatever layer's output reaches the model's
output without passing through another prunable layer, depth is the order layers run in, and a
layer is filter-prunable when Torch-Pruning's graph can remove one of its channels (with its whole
coupled group: residual additions, concatenations, depthwise convs) and the model still runs and
gives outputs of the same shape. Layers that fail that are left dense by the filter methods and
reported, never crashed on.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from pruners.layers import layer_kinds, prunable_layers

# Kinds of layer whose whole output channels (filters) a structural method may remove: not the
# classifier, whose outputs are the classes.
FILTER_KINDS = ("conv_early", "conv", "fc")


@dataclass(frozen=True)
class LayerPlan:
    order: tuple[str, ...]  # prunable layers in the order the forward pass runs them; untraced last
    classifiers: frozenset[str]  # layers whose outputs are the model's outputs
    dense: dict[str, str] = field(default_factory=dict)  # layer -> why filter pruning leaves it whole

    def filter_prunable(self, name: str) -> bool:
        return name not in self.classifiers and name not in self.dense


# The plan depends on the architecture and the input shape, not on weights: trials of one search
# (each with its own copy of the model, in a reused Ray actor) share it.
_CACHE: dict[tuple, LayerPlan] = {}
_CACHE_SIZE = 8


def layer_plan(model: nn.Module, example_input: torch.Tensor) -> LayerPlan:
    """The plan of `model` for inputs shaped like `example_input` (cached by architecture)."""
    key = (type(model).__module__, type(model).__qualname__, repr(model), tuple(example_input.shape),
           tuple((n, type(m).__name__, tuple(p.shape)) for n, m in model.named_modules()
                 for p in m.parameters(recurse=False)))
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = _analyze(model, example_input)
    return _CACHE[key]


def filter_layers(model: nn.Module, names, example_input: torch.Tensor) -> list[str]:
    """The layers of `names` that lose whole filters: not the classifier and not a layer the
    dependency graph cannot prune safely (left dense, see LayerPlan.dense). The one place this
    is decided: every filter method asks it through pruners.allocation.filter_groups, the search
    space directly."""
    kinds = layer_kinds(model, example_input)
    dense = layer_plan(model, example_input).dense
    return [n for n in names if kinds.get(n) in FILTER_KINDS and n not in dense]


def nothing_to_prune(method: str) -> str:
    """The note of a structural method on a model where no layer can lose filters."""
    return (f"{method}: no layer of this model can lose filters (the classifier keeps its outputs; see the "
            "layers the dependency graph leaves dense); no filter removed")


def run_order(model: nn.Module, example_input: torch.Tensor) -> list[str]:
    """Prunable layers in the order one forward pass calls them (a topological order of the graph)."""
    layers = prunable_layers(model)
    seen: list[str] = []
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: seen.append(n) if n not in seen else None)
             for n, m in layers.items()]
    was_training = [(m, m.training) for m in model.modules()]
    try:
        with torch.no_grad():
            model.eval()(example_input)
    finally:
        for h in hooks:
            h.remove()
        for m, training in was_training:
            m.training = training
    return seen


def _analyze(model: nn.Module, example_input: torch.Tensor) -> LayerPlan:
    from pruners import surgery

    layers = prunable_layers(model)
    ran = run_order(model, example_input)
    dense = {n: "not called by the forward pass as a module (e.g. used through a functional op)"
             for n in layers if n not in ran}
    try:
        DG = surgery._build_graph(model, example_input)
    except Exception as exc:  # noqa: BLE001 - Torch-Pruning cannot trace every model: leave it dense
        text = str(exc).strip().splitlines()
        why = f"the dependency graph cannot be built ({type(exc).__name__}: {text[0][:120] if text else ''})"
        # Without a graph the classifier is the layer that runs last: its outputs are the classes.
        classifiers = frozenset(ran[-1:])
        order = tuple(ran) + tuple(n for n in layers if n not in ran)
        return LayerPlan(order, classifiers, {**dense, **{n: why for n in ran if n not in classifiers}})
    names_of = {m: n for n, m in layers.items()}
    classifiers = frozenset(_output_layers(DG, names_of))
    for name in ran:
        if name in classifiers:
            continue
        module = layers[name]
        if module not in DG.module2node:
            dense[name] = "not in the dependency graph"
        elif isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups != module.in_channels:
            dense[name] = f"grouped conv (groups={module.groups}) that is not depthwise"
    candidates = [n for n in ran if n not in classifiers and n not in dense]
    dense.update(_unsafe(model, candidates, example_input))
    order = tuple(ran) + tuple(n for n in layers if n not in ran)
    return LayerPlan(order, classifiers, dense)


def _output_layers(DG, names_of: dict[nn.Module, str]) -> list[str]:
    """Prunable layers from which the output is reached through non-prunable nodes only."""
    out = []
    for module, name in names_of.items():
        node = DG.module2node.get(module)
        if node is None:
            continue
        stack, seen = list(node.outputs), set()
        reaches = not node.outputs
        while stack and not reaches:
            nxt = stack.pop()
            if id(nxt) in seen or nxt.module in names_of:
                continue
            seen.add(id(nxt))
            reaches = not nxt.outputs
            stack.extend(nxt.outputs)
        if reaches:
            out.append(name)
    return out


def _unsafe(model: nn.Module, names: list[str], example_input: torch.Tensor) -> dict[str, str]:
    """Layers whose group cannot lose one channel and still run: tried all at once (the common
    case, one copy), then one at a time only if that failed. If each layer passes alone but not
    all together, layers are added one by one in run order and the ones whose addition breaks
    the joint drop are left dense too: the probe never says "all safe" for a set of layers that
    the methods would then fail to prune."""
    joint = _try_drop(model, names, example_input) if names else None
    if joint is None:
        return {}
    found = {}
    for name in names:
        reason = _try_drop(model, [name], example_input)
        if reason is not None:
            found[name] = reason
    accepted: list[str] = []
    for name in (n for n in names if n not in found):
        reason = _try_drop(model, [*accepted, name], example_input)
        if reason is None:
            accepted.append(name)
        else:
            found[name] = f"cannot be pruned together with {', '.join(accepted[-3:]) or 'the others'}: {reason}"
    return found


def _try_drop(model: nn.Module, names: list[str], example_input: torch.Tensor) -> str | None:
    """None when dropping the last output channel of each of `names` (with its coupled group)
    works and keeps the output's shape; else why not."""
    from pruners import surgery

    trial = copy.deepcopy(model).eval()
    try:
        with torch.no_grad():
            before = trial(example_input)
        groups = surgery.channel_groups(trial, names, example_input)
        single = [g.root for g in groups if g.size < 2]
        if single:
            return f"{single[0]} has a single output channel"
        # The methods' own path: roots choose, members follow their mapped channels.
        surgery.remove_channels(trial, surgery.spread(groups, {g.root: [g.size - 1] for g in groups}), example_input)
        with torch.no_grad():
            after = trial(example_input)
        if getattr(after, "shape", None) != getattr(before, "shape", None):
            return "removing a channel changes the output's shape"
    except Exception as exc:  # noqa: BLE001 - any failure means the same: leave the layer dense
        text = str(exc).strip().splitlines()
        return f"the dependency graph cannot prune it ({type(exc).__name__}: {text[0][:120] if text else ''})"
    return None
