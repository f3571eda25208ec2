"""Allocation. Weights: LAMP and ERK, the papers' formulas on hand-built tensors, exact target
counts, no layer above density 1, both reachable through the magnitude pruner and the space.
Channels: per-layer ratios, and one global ranking over per-layer-normalized scores that removes
the requested fraction overall, ties residual groups and never touches the classifier."""
from __future__ import annotations

import math

import optuna
import pytest
import torch

from pruners.allocation import erk_keep_counts, erk_masks, filter_groups, global_channel_drop, global_masks, layer_channel_drop
from pruners.base import PruneContext
from pruners.importance import fpgm_scores, lamp_scores, root_scores, weight_scores
from pruners.layers import prunable_layers
from pruners.registry import get_pruner
from pruners.surgery import ChannelGroup, out_channels, remove_group_channels
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


def lamp_masks(model, names, sparsity):
    return global_masks(weight_scores(model, names, lamp_scores), sparsity)


def erk_magnitude_masks(model, names, sparsity):
    return erk_masks(weight_scores(model, names), sparsity)


def test_lamp_keeps_a_layer_that_global_magnitude_removes_and_hits_the_count():
    model = TwoLayers()
    lamp = lamp_masks(model, ["big", "tiny"], 0.5)
    glob = global_masks(weight_scores(model, ["big", "tiny"]), 0.5)
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
    masks = erk_magnitude_masks(model, names, 0.9)
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
    expected = lamp_masks if scope == "lamp" else erk_magnitude_masks
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


# ---- channels: per-layer and one global ranking --------------------------------------------------

def chain(root: str, size: int, *tied: str):
    """A ChannelGroup whose members lose the root's channel indices (a residual addition)."""
    return ChannelGroup(root, size, {m: {i: i for i in range(size)} for m in (root, *tied)})


def test_layer_channel_drop_takes_each_roots_ratio_and_keeps_one():
    groups = [chain("a", 4), chain("b", 3, "c")]
    scores = {"a": torch.tensor([4.0, 1.0, 3.0, 2.0]), "b": torch.tensor([1.0, 1.0, 1.0])}
    assert layer_channel_drop(groups, scores, {"a": 0.5, "b": 0.99, "c": 0.0}) == {"a": [1, 3], "b": [0, 1]}


def test_global_channel_drop_normalizes_each_layer_then_ranks_all_together():
    # Layer a's scores are 1000x larger: raw, one threshold would take b's channels only.
    groups = [chain("a", 4), chain("b", 6, "b_tied")]
    scores = {"a": 1000 * torch.tensor([4.0, 1.0, 2.0, 3.0]), "b": torch.tensor([6.0, 5.0, 1.0, 2.0, 3.0, 4.0])}
    # Divided by the layer mean: a -> 1.6 .4 .8 1.2; b -> 1.71 1.43 .29 .57 .86 1.14. The 5 lowest
    # (half of 10): b2 .29, a1 .4, b3 .57, a2 .8, b4 .86.
    assert global_channel_drop(groups, scores, 0.5) == {"a": [1, 2], "b": [2, 3, 4]}
    assert global_channel_drop(groups, scores, 0.0) == {"a": [], "b": []}


@pytest.mark.parametrize("fraction", [0.1, 0.35, 0.6, 0.9, 0.99])
def test_global_channel_drop_removes_the_fraction_overall_and_keeps_each_groups_best(fraction):
    gen = torch.Generator().manual_seed(int(fraction * 100))
    sizes = {"a": 3, "b": 8, "c": 16, "d": 5}
    groups = [chain(n, s) for n, s in sizes.items()]
    scores = {n: torch.rand(s, generator=gen) * 10 ** i for i, (n, s) in enumerate(sizes.items())}
    before = {n: s.clone() for n, s in scores.items()}
    drop = global_channel_drop(groups, scores, fraction)
    assert all(torch.equal(before[n], s) for n, s in scores.items())  # the scores are read, not changed
    total = sum(sizes.values())
    assert sum(map(len, drop.values())) == min(round(fraction * total), total - len(groups))
    for name, size in sizes.items():
        assert len(drop[name]) < size and drop[name] == sorted(set(drop[name]))
        assert int(torch.argmax(scores[name])) not in drop[name]  # the best channel stays


def test_global_channel_ranking_on_a_resnet_ties_residual_groups_and_spares_the_classifier():
    torch.manual_seed(0)
    model, x = build_model("resnet20", 1, 10, 8).eval(), torch.randn(2, 1, 8, 8)
    layers = prunable_layers(model)
    groups = filter_groups(model, layers, x)  # every layer offered, the classifier too
    assert all("fc" not in g.members for g in groups)
    widths = {n: out_channels(m) for n, m in layers.items()}
    drop = global_channel_drop(groups, root_scores(model, groups, fpgm_scores), 0.3)
    total = sum(g.size for g in groups)
    assert sum(map(len, drop.values())) == round(0.3 * total)
    assert len({len(d) / widths[r] for r, d in drop.items()}) > 1  # layers end up with different ratios
    kept = remove_group_channels(model, groups, drop, x)
    assert "fc" not in kept and model.fc.out_features == 10
    for g in groups:
        assert all(kept[m] == kept[g.root] for m in g.members)  # a residual group shares one decision
        assert len(kept[g.root]) == g.size - len(drop[g.root])
    assert model(x).shape == (2, 10)
