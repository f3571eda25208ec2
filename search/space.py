"""The search space: which method, its settings, and one sparsity per layer inside
depth-aware bounds. A define-by-run function for Optuna, so each method samples only the
settings it uses; parameter names are SearchConfig's field names plus `sparsity.<layer>`."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import optuna

from pruners.layers import conv_depth, layer_kinds
from search.config import SearchConfig
from trainables.trial import SPARSITY_PREFIX

# Which layers a method samples a ratio for. FPGM removes whole filters/neurons, never the
# classifier's outputs (they are the classes); its ratio means "fraction of filters".
STRUCTURAL_KINDS = ("conv_early", "conv", "fc")
ALL_KINDS = ("conv_early", "conv", "fc", "classifier")
METHOD_LAYER_KINDS = {"fpgm": STRUCTURAL_KINDS}
METHOD_SETTINGS = {
    "magnitude": ("magnitude_scope",),
    "taylor": ("taylor_batches",),
    "lottery": ("lottery_rounds", "lottery_rewind_iter"),
    "hybrid": ("hybrid_filter_ratio", "hybrid_temperature", "hybrid_alpha"),
}
INT_SETTINGS = ("taylor_batches", "lottery_rounds")
CATEGORICAL_SETTINGS = ("magnitude_scope", "lottery_rewind_iter")
LOG_SETTINGS = ("finetune_lr",)


@dataclass(frozen=True)
class SpaceSpec:
    """Everything the space function needs, picklable (Ray checkpoints the searcher)."""

    methods: tuple[str, ...]
    layers: tuple[tuple[str, str, float, float], ...]  # (name, kind, lo, hi)
    ranges: tuple[tuple[str, Any], ...]  # searched setting -> range or choices
    constants: tuple[tuple[str, Any], ...]  # fixed settings merged into every trial config


def layer_bounds(model, cfg: SearchConfig) -> list[tuple[str, str, float, float]]:
    """Depth-aware: the first conv uses bounds_conv_early, the last conv bounds_conv, convs in
    between interpolate by depth; hidden FC layers bounds_fc, the classifier bounds_classifier."""
    depth = conv_depth(model)
    out = []
    for name, kind in layer_kinds(model).items():
        if kind in ("conv_early", "conv"):
            (elo, ehi), (clo, chi) = cfg.bounds_conv_early, cfg.bounds_conv
            d = depth[name]
            lo, hi = elo + (clo - elo) * d, ehi + (chi - ehi) * d
        else:
            lo, hi = cfg.bounds_fc if kind == "fc" else cfg.bounds_classifier
        out.append((name, kind, round(lo, 6), round(hi, 6)))
    return out


def make_spec(cfg: SearchConfig, model) -> SpaceSpec:
    base_epochs, finetune_epochs = cfg.epochs
    ranges = tuple((name, getattr(cfg, name)) for name in
                   ("finetune_lr", *[s for m in cfg.methods for s in METHOD_SETTINGS.get(m, ())]))
    if "magnitude" in cfg.methods and "global" in cfg.magnitude_scope:
        ranges += (("global_sparsity", cfg.global_sparsity),)
    constants = (("model", cfg.model), ("finetune_epochs", finetune_epochs), ("batch_size", cfg.batch_size),
                 ("seed", cfg.seed), ("augment", cfg.augment), ("latency_batch", cfg.latency_batch))
    return SpaceSpec(tuple(cfg.methods), tuple(layer_bounds(model, cfg)), ranges, constants)


def _suggest(trial: optuna.Trial, name: str, rng: Any) -> Any:
    if name in CATEGORICAL_SETTINGS:
        return rng[0] if len(rng) == 1 else trial.suggest_categorical(name, list(rng))
    lo, hi = rng
    if lo == hi:
        return int(lo) if name in INT_SETTINGS else lo
    if name in INT_SETTINGS:
        return trial.suggest_int(name, int(lo), int(hi))
    return trial.suggest_float(name, lo, hi, log=name in LOG_SETTINGS)


def define_space(spec: SpaceSpec, trial: optuna.Trial) -> dict[str, Any]:
    """Samples into `trial`; returns the constants (and unsampled fixed values) to merge."""
    ranges = dict(spec.ranges)
    fixed: dict[str, Any] = dict(spec.constants)
    method = spec.methods[0] if len(spec.methods) == 1 else trial.suggest_categorical("method", list(spec.methods))
    if len(spec.methods) == 1:
        fixed["method"] = method
    names = ["finetune_lr", *METHOD_SETTINGS.get(method, ())]
    for name in names:
        value = _suggest(trial, name, ranges[name])
        if name not in trial.params:
            fixed[name] = value
    if method == "magnitude" and trial.params.get("magnitude_scope", fixed.get("magnitude_scope")) == "global":
        value = _suggest(trial, "global_sparsity", ranges["global_sparsity"])
        if "global_sparsity" not in trial.params:
            fixed["global_sparsity"] = value
        return fixed  # one global threshold: no per-layer ratios
    kinds = METHOD_LAYER_KINDS.get(method, ALL_KINDS)
    for name, kind, lo, hi in spec.layers:
        if kind not in kinds:
            continue
        key = SPARSITY_PREFIX + name
        if lo == hi:
            fixed[key] = lo
        else:
            trial.suggest_float(key, lo, hi)
    return fixed


def space_fn(spec: SpaceSpec) -> Callable[[optuna.Trial], dict[str, Any]]:
    return partial(define_space, spec)  # a partial of a module-level function pickles


RECIPE_SPARSITIES = (0.5, 0.8, 0.9, 0.2, 0.95)


def recipe_points(cfg: SearchConfig) -> list[dict[str, Any]]:
    """The article's recipe: global magnitude at uniform 20/50/80/90/95%, with the same
    fine-tuning. Enqueued first, so the front always contains it (at most a quarter of the
    budget, most informative ratios first)."""
    if not cfg.enqueue_recipe or "magnitude" not in cfg.methods or "global" not in cfg.magnitude_scope:
        return []
    lo, hi = cfg.finetune_lr
    lr = math.sqrt(lo * hi)
    n = min(len(RECIPE_SPARSITIES), cfg.budget // 4)
    points = []
    for s in RECIPE_SPARSITIES[:n]:
        point = {"finetune_lr": lr, "global_sparsity": s}
        if len(cfg.methods) > 1:
            point["method"] = "magnitude"
        if len(cfg.magnitude_scope) > 1:
            point["magnitude_scope"] = "global"
        points.append(point)
    return points
