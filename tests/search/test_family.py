"""The family space: two numbers (overall target, ERK-shaped spread) give every layer's ratio,
inside its bounds, with the weight-weighted mean on target; shape 0 is uniform, 1 is ERK."""
from __future__ import annotations

import math

import optuna
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pruners.allocation import erk_keep_counts
from search.config import SearchConfig
from search.family import family_ratios
from search.space import define_space, make_spec
from trainables.models import build_model
from trainables.trial_config import SPARSITY_PREFIX

SHAPES = {"conv1": (32, 3, 3, 3), "conv2": (64, 32, 3, 3), "fc1": (256, 4096), "fc2": (10, 256)}
OPEN = {n: (0.0, 1.0) for n in SHAPES}


def _mean(ratios, shapes=SHAPES):
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    return sum(ratios[n] * sizes[n] for n in shapes) / sum(sizes.values())


def test_shape_zero_is_uniform():
    assert family_ratios(SHAPES, OPEN, 0.8, 0.0) == pytest.approx({n: 0.8 for n in SHAPES}, abs=1e-9)


def test_shape_one_is_erk():
    ratios = family_ratios(SHAPES, OPEN, 0.9, 1.0)
    counts = erk_keep_counts(SHAPES, 0.9)  # pruners.allocation's ERK, with its own redistribution
    for n, s in SHAPES.items():
        assert 1.0 - ratios[n] == pytest.approx(counts[n] / math.prod(s), abs=1e-3)
    assert ratios["fc1"] > ratios["conv2"] > ratios["conv1"]  # larger layers pruned harder


@settings(max_examples=200, deadline=None)
@given(st.floats(0.0, 0.98), st.floats(0.0, 3.0),
       st.lists(st.tuples(st.floats(0.0, 0.5), st.floats(0.5, 1.0)), min_size=4, max_size=4))
def test_ratios_stay_in_bounds_and_meet_the_target_when_the_bounds_allow(target, beta, bounds):
    b = dict(zip(SHAPES, bounds))
    ratios = family_ratios(SHAPES, b, target, beta)
    assert all(b[n][0] - 1e-12 <= r <= b[n][1] + 1e-12 for n, r in ratios.items())
    lo, hi = _mean({n: b[n][0] for n in b}), _mean({n: b[n][1] for n in b})
    expected = min(max(target, lo), hi)  # nearest reachable mean
    assert _mean(ratios) == pytest.approx(expected, abs=1e-6)


def test_the_family_space_samples_two_numbers_and_gives_every_layer_a_ratio():
    cfg = SearchConfig(space="family", methods=("magnitude", "fpgm"), magnitude_scope=("layer",))
    model = build_model("simplecnn", 1, 10, 8)
    spec = make_spec(cfg, model, torch.randn(1, 1, 8, 8))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(0))
    for _ in range(10):
        trial = study.ask()
        config = {**define_space(spec, trial), **trial.params}
        ratio_params = [k for k in trial.params if k.startswith(SPARSITY_PREFIX)]
        assert not ratio_params and {"family_target", "family_shape"} <= set(trial.params)
        layers = {"magnitude": {"conv1", "conv2", "fc1", "fc2"}, "fpgm": {"conv1", "conv2", "fc1"}}[config["method"]]
        assert {k[len(SPARSITY_PREFIX):] for k in config if k.startswith(SPARSITY_PREFIX)} == layers
        assert config["space"] == "family"
        study.tell(trial, [0.5, 0.5])
