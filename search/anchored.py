"""The anchored space (`--space anchored`): a per-layer search that starts where one-shot pruning
ends. The sampler picks a target and a one-shot allocation (magnitude's global threshold, LAMP
or ERK: pruners.magnitude.GLOBAL_ALLOCATIONS, the same code a one-shot trial runs), which gives
every layer its own ratio from the dense model's weights; then one offset per layer moves it.

- Offsets of 0 reproduce the one-shot allocation exactly: a layer-wise trial at those ratios
  drops the very weights the one-shot drops (tests/search/test_anchored.py).
- The depth-aware policy is the prior on the offsets, not a cap on the ratios: an early conv or
  the classifier may move down freely but up only a little, a hidden FC the other way round, so
  high compression stays reachable where the allocation puts it.

Like the family space, the ratios reach the trial as `sparsity.<layer>` constants, so trials,
MLflow and search.results.reproduce see per-layer ratios either way; the offsets are the Optuna
params `offset.<layer>`.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch

from pruners.allocation import ratios_of
from pruners.magnitude import GLOBAL_ALLOCATIONS

ALLOCATIONS = tuple(GLOBAL_ALLOCATIONS)  # global, lamp, erk
OFFSET_PREFIX = "offset."
MAX_RATIO = 0.99  # an offset never pushes a layer past this (the anchor itself may: global at 95% can)
# How far an offset may move a layer, as fractions of --anchor-width: (down, up). Conservative
# layers move up a quarter as far as down; hidden FC layers (most of the weights) the reverse.
OFFSET_SHAPE = {"conv_early": (1.0, 0.25), "classifier": (1.0, 0.25), "conv": (1.0, 1.0), "fc": (0.25, 1.0)}


def anchor_ratios(weights: Mapping[str, torch.Tensor], allocation: str, target: float) -> dict[str, float]:
    """Each layer's ratio under the one-shot `allocation` of `target` over these layers' weights."""
    score, allocate = GLOBAL_ALLOCATIONS[allocation]
    return ratios_of(allocate({name: score(w) for name, w in weights.items()}, target))


def offset_bounds(kind: str, width: float) -> tuple[float, float]:
    down, up = OFFSET_SHAPE[kind]
    return -down * width, up * width


def moved(anchor: Mapping[str, float], offsets: Mapping[str, float]) -> dict[str, float]:
    """The anchor's ratios moved by the offsets, kept in [0, MAX_RATIO], or in [0, r] when the
    anchor itself allocated a layer r > MAX_RATIO (so offsets of 0 are the one-shot, exactly)."""
    return {name: min(max(r + offsets.get(name, 0.0), 0.0), max(MAX_RATIO, r)) for name, r in anchor.items()}
