"""LAMP and ERK allocations: the paper's formulas on hand-built tensors, exact target counts,
no layer above density 1, and both reachable through the magnitude pruner and the space."""
from __future__ import annotations

import math

import optuna
import pytest
import torch

from pruners.allocation import erk_keep_counts, erk_masks, lamp_masks, lamp_scores
from pruners.base import PruneContext
from pruners.layers import prunable_layers
from pruners.magnitude import global_magnitude_masks
from pruners.registry import get_pruner
from search.config import SearchConfig
from search.space import define_space, make_spec
from trainables.models import SimpleCNN, build_model
from trainables.trial_config import SPARSITY_PREFIX


def test_lamp_scores_follow_the_papers_formula_on_a_hand_built_tensor():
    w = torch.tensor([[3.0, -1.0], [2.0, 0.5]])
    # Squares 9, 1, 4, 0.25; ascending 0.25, 1, 4, 9; a score is w^2 over the sum of every
    # square at least as large: 0.25/14.25, 1/14, 4/13, 9/9.
    expected = torch.tensor([[1.0, 1 / 14], [4 / 13, 0.25 / 14.25]], dtype=torch.float64)
    assert torch.allclose(lamp_scores(w), expected, rtol=0, atol=1e-12)


def test_lamp_ranks_within_a_layer_by_magnitude_and_always_keeps_each_layers_largest():
    torch.manual_seed(0)
    w = torch.randn(6, 5)
    s = lamp_scores(w)
    order_w = torch.argsort(w.abs().flatten(), stable=True)
    assert torch.all(s.flatten()[order_w].diff() >= 0)  # monotone in |w| inside a layer
    assert s.flatten()[order_w[-1]] == 1.0


class TwoLayers(torch.nn.Module):
    """A layer of large weights and a layer of tiny ones: one magnitude threshold wipes the tiny
    layer out, LAMP's per-layer normalization does not."""

    def __init__(self):
        super().__init__()
        self.big = torch.nn.Linear(8, 8, bias=False)
        self.tiny = torch.nn.Linear(8, 4, bias=False)
        with torch.no_grad():
            self.big.weight.copy_(torch.linspace(1.0, 2.0, 64).view(8, 8))
            self.tiny.weight.copy_(torch.linspace(0.001, 0.002, 32).view(4, 8))


def test_lamp_keeps_a_layer_that_global_magnitude_removes_and_hits_the_count():
    model = TwoLayers()
    lamp = lamp_masks(model, ["big", "tiny"], 0.5)
    glob = global_magnitude_masks(model, ["big", "tiny"], 0.5)
    assert int(glob["tiny.weight"].sum()) == 0
    assert int(lamp["tiny.weight"].sum()) > 0
    assert sum(int((~m).sum()) for m in lamp.values()) == round(0.5 * 96)


SIMPLECNN_SHAPES = {n: tuple(m.weight.shape) for n, m in prunable_layers(SimpleCNN(3, 10, 32)).items()}


@pytest.mark.parametrize("sparsity", [0.2, 0.5, 0.8, 0.9, 0.95, 0.98, 0.999])
def test_erk_hits_the_target_count_exactly_and_never_exceeds_density_one(sparsity):
    counts = erk_keep_counts(SIMPLECNN_SHAPES, sparsity)
    total = sum(math.prod(s) for s in SIMPLECNN_SHAPES.values())
    assert sum(counts.values()) == total - round(sparsity * total)
    for name, shape in SIMPLECNN_SHAPES.items():
        assert 0 <= counts[name] <= math.prod(shape), name


def test_erk_densities_are_proportional_to_the_shape_formula_and_the_excess_is_redistributed():
    # A 3x3 conv with few channels has a huge raw ERK density: it goes dense, the rest share what is left.
    shapes = {"small": (4, 3, 3, 3), "conv": (64, 64, 3, 3), "fc": (512, 4096)}
    counts = erk_keep_counts(shapes, 0.9)
    assert counts["small"] == math.prod(shapes["small"])
    density = {n: counts[n] / math.prod(s) for n, s in shapes.items()}
    raw = {n: sum(s) / math.prod(s) for n, s in shapes.items()}
    assert density["conv"] / density["fc"] == pytest.approx(raw["conv"] / raw["fc"], rel=1e-3)
    total = sum(math.prod(s) for s in shapes.values())
    assert sum(counts.values()) == total - round(0.9 * total)


def test_erk_masks_drop_the_smallest_weights_of_each_layer():
    torch.manual_seed(3)
    model = SimpleCNN(3, 10, 32)
    names = list(prunable_layers(model))
    masks = erk_masks(model, names, 0.9)
    counts = erk_keep_counts(SIMPLECNN_SHAPES, 0.9)
    for name in names:
        w, mask = getattr(model, name).weight.detach().abs(), masks[f"{name}.weight"]
        assert int(mask.sum()) == counts[name]
        if 0 < int(mask.sum()) < mask.numel():
            assert w[~mask].max() <= w[mask].min()


@pytest.mark.parametrize("scope", ["lamp", "erk"])
def test_magnitude_pruner_spreads_global_sparsity_with_the_scope(scope):
    torch.manual_seed(1)
    model = SimpleCNN(3, 10, 32)
    result = get_pruner("magnitude")(model, {}, {"magnitude_scope": scope, "global_sparsity": 0.9},
                                     PruneContext(example_input=torch.randn(1, 3, 32, 32)))
    total = sum(m.numel() for m in result.masks.values())
    assert sum(int((~m).sum()) for m in result.masks.values()) == round(0.9 * total)
    expected = lamp_masks if scope == "lamp" else erk_masks
    reference = expected(model, list(prunable_layers(model)), 0.9)
    assert all(torch.equal(result.masks[k], reference[k]) for k in reference)
    for name in prunable_layers(model):
        assert torch.all(getattr(result.model, name).weight[~result.masks[f"{name}.weight"]] == 0)


def test_space_samples_global_sparsity_and_no_layer_ratios_for_an_allocation_scope():
    cfg = SearchConfig(methods=("magnitude",), magnitude_scope=("lamp", "erk"))
    spec = make_spec(cfg, build_model("simplecnn", 1, 10, 8), torch.randn(1, 1, 8, 8))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        config = {**define_space(spec, trial), **trial.params}
        seen.add(config["magnitude_scope"])
        assert 0.2 <= config["global_sparsity"] <= 0.95
        assert not any(k.startswith(SPARSITY_PREFIX) for k in config)
        study.tell(trial, [0.0, 0.0])
    assert seen == {"lamp", "erk"}
