"""The search space: which method, its settings, and one sparsity per layer inside
depth-aware bounds. A define-by-run function for Optuna, so each method samples only the
settings it uses; parameter names are SearchConfig's field names plus `sparsity.<layer>`.

Deep models (ResNet-56: 57 convs) have too many layers for one free ratio each on a budget of
~50 trials, so the "schedule" space samples three numbers instead, start/end/curve, and expands
them to every conv's ratio by depth. The expanded ratios still reach the trial as
`sparsity.<layer>` keys (as constants), so trials and MLflow see per-layer ratios either way.
The "family" space (search.family) goes further for any model: a target and a shape, two numbers.

Each searched setting is declared next to its owner (pruners/<method>.py,
trainables.trial_config.FinetuneSettings) with its kind (int, float, log, choice), which says
how it is suggested here.

Filter pruning (FPGM) removes the output channels of layers joined by a residual addition
together, at the ratio of the group's first layer. So only that layer's ratio is sampled; the
others are set to it (constants), and Optuna's space has no dimension that changes nothing."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import optuna
import torch

from pruners.graph import FILTER_KINDS, filter_layers
from pruners.layers import conv_depth, layer_kinds, prunable_layers
from pruners.registry import get_pruner
from pruners.settings import SettingSpec
from pruners.surgery import coupled_layers
from search.anchored import OFFSET_PREFIX, anchor_ratios, moved, offset_bounds
from search.config import SEARCHED, SearchConfig, setting_groups
from search.family import FAMILY_SETTINGS, family_ratios
from trainables.trial_config import SPARSITY_PREFIX, FinetuneSettings

# Which layers a method samples a ratio for. A method whose ratio is a fraction of filters
# (Pruner.ratios_are_filters: fpgm, taylor at filter granularity) samples pruners.graph's
# FILTER_KINDS: never the classifier's outputs (they are the classes).
ALL_KINDS = ("conv_early", "conv", "fc", "classifier")
CONV_KINDS = ("conv_early", "conv")
# The schedule space's own settings (SearchConfig fields with search=True), sampled as floats.
SCHEDULE_SETTINGS = ("schedule_start", "schedule_end", "schedule_curve")
ANCHOR_SETTINGS = ("anchor_target", "anchor_allocation")  # the anchored space's (search.anchored)
AUTO_SCHEDULE_LAYERS = 20  # "auto" uses the schedule above this many prunable layers


class LayerBounds(NamedTuple):
    name: str
    kind: str  # conv_early | conv | fc | classifier (pruners.layers.layer_kinds)
    lo: float
    hi: float
    depth: float | None = None  # relative conv depth in [0, 1]; None for Linear layers
    follows: str | None = None  # channel methods: the earlier layer whose output channels this one shares
    filters: bool = True  # channel methods may remove its filters (False: the graph leaves it dense)
    shape: tuple[int, ...] = ()  # the weight's shape (the family space's ERK factor)


@dataclass(frozen=True)
class SpaceSpec:
    """Everything the space function needs, picklable (Ray checkpoints the searcher)."""

    methods: tuple[str, ...]
    layers: tuple[LayerBounds, ...]
    ranges: tuple[tuple[str, Any], ...]  # searched setting -> range or choices
    constants: tuple[tuple[str, Any], ...]  # fixed settings merged into every trial config
    schedule: bool = False  # conv ratios from the start/end/curve depth schedule
    family: bool = False  # every ratio from family_target/family_shape (search.family)
    # The anchored space (search.anchored): the dense weights the one-shot allocations rank, by
    # layer, and how far an offset may move a layer's anchored ratio. Empty: another space.
    anchor_weights: tuple[tuple[str, torch.Tensor], ...] = ()
    anchor_width: float = 0.0

    @property
    def anchored(self) -> bool:
        return bool(self.anchor_weights)


def channel_coupling(model, example_input: torch.Tensor) -> dict[str, str]:
    """member -> root for every filter layer whose output channels a residual addition ties to
    an earlier layer's (Torch-Pruning's dependency graph, as FPGM's surgery uses it)."""
    names = filter_layers(model, prunable_layers(model), example_input)
    return {m: root for root, members in coupled_layers(model, names, example_input).items() for m in members[1:]}


def layer_bounds(model, cfg: SearchConfig, example_input: torch.Tensor, coupling: dict[str, str] | None = None,
                 caps: dict[str, float] | None = None) -> list[LayerBounds]:
    """Depth-aware: the first conv uses bounds_conv_early, the last conv bounds_conv, convs in
    between interpolate by depth; hidden FC layers bounds_fc, the classifier bounds_classifier.
    `caps` (the sensitivity scan's, trainables.sensitivity) lower a layer's upper bound further.
    In depth order (the graph's, traced on `example_input`)."""
    depth = conv_depth(model, example_input)
    filters = set(filter_layers(model, prunable_layers(model), example_input))
    coupling = coupling or {}
    caps = caps or {}
    modules = prunable_layers(model)
    out = []
    for name, kind in layer_kinds(model, example_input).items():
        d = depth.get(name)
        if kind in CONV_KINDS:
            (elo, ehi), (clo, chi) = cfg.bounds_conv_early, cfg.bounds_conv
            lo, hi = elo + (clo - elo) * d, ehi + (chi - ehi) * d
        else:
            lo, hi = cfg.bounds_fc if kind == "fc" else cfg.bounds_classifier
        hi = min(hi, caps.get(name, hi))
        lo = min(lo, hi)
        out.append(LayerBounds(name, kind, round(lo, 6), round(hi, 6), d, coupling.get(name), name in filters,
                               tuple(modules[name].weight.shape)))
    return out


def uses_schedule(cfg: SearchConfig, model) -> bool:
    return cfg.space == "schedule" or (cfg.space == "auto" and len(prunable_layers(model)) > AUTO_SCHEDULE_LAYERS)


def expand_schedule(layers: Iterable[LayerBounds], start: float, end: float, curve: float) -> dict[str, float]:
    """Every conv's ratio: start + (end - start) * depth^curve, clipped into its own bounds (so
    the depth-aware policy still holds: the first conv stays conservative whatever `start` is)."""
    return {
        layer.name: min(max(start + (end - start) * layer.depth ** curve, layer.lo), layer.hi)
        for layer in layers if layer.kind in CONV_KINDS
    }


def make_spec(cfg: SearchConfig, model, example_input: torch.Tensor, caps: dict[str, float] | None = None) -> SpaceSpec:
    """`example_input`: one input batch of the model's shape (traced for residual coupling);
    `caps`: per-layer upper bounds from the sensitivity scan, if the search uses one."""
    base_epochs, finetune_epochs = cfg.epochs
    family, anchored = cfg.space == "family", cfg.space == "anchored"
    schedule = not (family or anchored) and uses_schedule(cfg, model)
    groups = setting_groups()
    owners = [groups["finetune"], *(groups[m] for m in cfg.methods)]
    ranges = tuple((spec.name, getattr(cfg, spec.name)) for owner in owners for spec in owner.specs()
                   if _may_apply(spec, cfg))
    if schedule or family or anchored:
        compact = SCHEDULE_SETTINGS if schedule else FAMILY_SETTINGS if family else ANCHOR_SETTINGS
        ranges += tuple((name, getattr(cfg, name)) for name in compact)
    # `space` is the resolved one ("auto" becomes what it chose), so each trial's params say it.
    constants = (("model", cfg.model), ("finetune_epochs", finetune_epochs), ("batch_size", cfg.batch_size),
                 ("seed", cfg.seed), ("augment", cfg.augment_on), ("latency_batch", cfg.latency_batch),
                 ("space", cfg.space if family or anchored else "schedule" if schedule else "per-layer"))
    # Any method that may remove filters (fpgm; taylor at filter granularity) needs the coupling.
    filter_methods = [m for m in cfg.methods if get_pruner(m).structural]
    coupling = channel_coupling(model, example_input) if filter_methods else {}
    weights = tuple((name, m.weight.detach().clone()) for name, m in prunable_layers(model).items()) if anchored else ()
    return SpaceSpec(tuple(cfg.methods), tuple(layer_bounds(model, cfg, example_input, coupling, caps)), ranges,
                     constants, schedule, family, weights, cfg.anchor_width)


def _may_apply(spec: SettingSpec, cfg: SearchConfig) -> bool:
    """A setting with a `when` condition is in the space only if the search can meet it."""
    return spec.when is None or bool(set(getattr(cfg, spec.when[0])) & set(spec.when[1]))


def _suggest(trial: optuna.Trial, name: str, rng: Any) -> Any:
    kind = SEARCHED[name].kind if name in SEARCHED else "float"  # the schedule's and family's settings are floats
    if kind == "choice":
        return rng[0] if len(rng) == 1 else trial.suggest_categorical(name, list(rng))
    lo, hi = rng
    if lo == hi:
        return int(lo) if kind == "int" else lo
    if kind == "int":
        return trial.suggest_int(name, int(lo), int(hi))
    return trial.suggest_float(name, lo, hi, log=kind == "log")


def _sample(trial: optuna.Trial, name: str, rng: Any, fixed: dict[str, Any]) -> Any:
    """Suggest `name`; a value fixed by a one-point range is not an Optuna param, so it goes into
    the returned constants instead (Ray merges them into the trial config)."""
    value = _suggest(trial, name, rng)
    if name not in trial.params:
        fixed[name] = value
    return value


def _sample_settings(trial: optuna.Trial, method: str, ranges: dict[str, Any], fixed: dict[str, Any]):
    """Sample the fine-tune's and the method's settings (in declaration order, so a `when`
    condition sees the setting it depends on); returns the method's typed settings."""
    settings_type = get_pruner(method).settings_type
    values: dict[str, Any] = {}
    for spec in (*FinetuneSettings.specs(), *settings_type.specs()):
        if spec.active(values) and spec.name in ranges:
            values[spec.name] = _sample(trial, spec.name, ranges[spec.name], fixed)
    return settings_type.from_values(values)


def define_space(spec: SpaceSpec, trial: optuna.Trial) -> dict[str, Any]:
    """Samples into `trial`; returns the constants (and unsampled fixed values) to merge."""
    ranges = dict(spec.ranges)
    fixed: dict[str, Any] = dict(spec.constants)
    method = spec.methods[0] if len(spec.methods) == 1 else trial.suggest_categorical("method", list(spec.methods))
    if len(spec.methods) == 1:
        fixed["method"] = method
    settings = _sample_settings(trial, method, ranges, fixed)
    if not settings.uses_layer_ratios():
        return fixed  # one global target spread by the method itself: no per-layer ratios
    filters = get_pruner(method).ratios_are_filters(settings)
    kinds = FILTER_KINDS if filters else ALL_KINDS
    # Filter methods skip the layers the dependency graph leaves dense: no dimension that changes nothing.
    layers = [layer for layer in spec.layers if layer.kind in kinds and (layer.filters or not filters)]
    drawn: dict[str, float] = {}  # ratios a compact space derived from its few numbers
    if spec.family and layers:
        target, shape = (_sample(trial, name, ranges[name], fixed) for name in FAMILY_SETTINGS)
        roots = [layer for layer in layers if not (filters and layer.follows is not None)]
        drawn = family_ratios({b.name: b.shape for b in roots}, {b.name: (b.lo, b.hi) for b in roots}, target, shape)
    elif spec.anchored and layers:
        roots = [layer for layer in layers if not (filters and layer.follows is not None)]
        drawn = _anchored_ratios(spec, trial, roots, ranges, fixed)
    elif spec.schedule and any(layer.kind in CONV_KINDS for layer in layers):
        start, end, curve = (_sample(trial, name, ranges[name], fixed) for name in SCHEDULE_SETTINGS)
        drawn = expand_schedule(layers, start, end, curve)
    fixed.update({SPARSITY_PREFIX + name: ratio for name, ratio in drawn.items()})
    for layer in sorted(layers, key=lambda b: b.follows is not None):  # roots before the layers following them
        key = SPARSITY_PREFIX + layer.name
        if layer.follows is not None and filters:
            root_key = SPARSITY_PREFIX + layer.follows
            root_ratio = fixed.get(root_key, trial.params.get(root_key))
            if root_ratio is not None:
                fixed[key] = root_ratio
                continue
        if layer.name in drawn:
            continue
        if layer.lo == layer.hi:
            fixed[key] = layer.lo
        else:
            trial.suggest_float(key, layer.lo, layer.hi)
    return fixed


def _anchored_ratios(spec: SpaceSpec, trial: optuna.Trial, layers: list[LayerBounds], ranges: dict[str, Any],
                     fixed: dict[str, Any]) -> dict[str, float]:
    """The anchored space's ratios: a one-shot allocation at a sampled target over these layers,
    each moved by its own sampled offset (search.anchored)."""
    choices = ranges["anchor_allocation"]
    allocation = choices[0] if len(choices) == 1 else trial.suggest_categorical("anchor_allocation", list(choices))
    if len(choices) == 1:
        fixed["anchor_allocation"] = allocation
    target = _sample(trial, "anchor_target", ranges["anchor_target"], fixed)
    weights = dict(spec.anchor_weights)
    anchor = anchor_ratios({layer.name: weights[layer.name] for layer in layers}, allocation, target)
    offsets = {}
    for layer in layers:
        lo, hi = offset_bounds(layer.kind, spec.anchor_width)
        offsets[layer.name] = trial.suggest_float(OFFSET_PREFIX + layer.name, lo, hi) if lo < hi else 0.0
    return moved(anchor, offsets)


def space_fn(spec: SpaceSpec) -> Callable[[optuna.Trial], dict[str, Any]]:
    return partial(define_space, spec)  # a partial of a module-level function pickles


# Most useful first, for small budgets: the high-compression end, where the sampler's first
# (random) draws rarely go and a one-shot is hardest to beat, then the rest of the article's ratios.
RECIPE_SPARSITIES = (0.9, 0.8, 0.95, 0.5, 0.2)


def recipe_points(cfg: SearchConfig) -> list[dict[str, Any]]:
    """The article's recipe: global magnitude at uniform 20/50/80/90/95%, with the same
    fine-tuning. Enqueued first, so the front always contains it (at most a quarter of the
    budget, most useful ratios first). Where the search may quantize, the recipe is enqueued in
    int8: per-channel int8 after the fine-tune costs almost no accuracy (BENCHMARKS.md, QAT vs
    PTQ and int8 for magnitude) at about a quarter of the bytes, so the fp32 recipe would only
    seed points the int8 ones dominate."""
    if not cfg.enqueue_recipe or "magnitude" not in cfg.methods or "global" not in cfg.magnitude_scope:
        return []
    lo, hi = cfg.finetune_lr
    lr = math.sqrt(lo * hi)
    n = min(len(RECIPE_SPARSITIES), cfg.budget // 4)
    points = []
    for s in RECIPE_SPARSITIES[:n]:
        point: dict[str, Any] = {"finetune_lr": lr, "global_sparsity": s}
        if len(cfg.methods) > 1:
            point["method"] = "magnitude"
        if len(cfg.magnitude_scope) > 1:
            point["magnitude_scope"] = "global"
        if len(cfg.quantize) > 1 and "int8" in cfg.quantize:
            point["quantize"] = "int8"
        points.append(point)
    return points
