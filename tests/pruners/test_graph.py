"""What the dependency graph says about any model: the classifier is the layer producing the
output, depth is run order, coupled groups follow additions, concatenations and depthwise convs,
and layers it cannot prune are left dense by the filter methods, never crashed on."""
from __future__ import annotations

import torch
from torch import nn

from pruners.base import PruneContext
from pruners.graph import filter_layers, layer_plan
from pruners.layers import conv_depth, layer_kinds, prunable_layers
from pruners.registry import get_pruner
from pruners.surgery import coupled_layers
from tests.search.byo_model import TinyNet

X = torch.randn(2, 1, 8, 8)


class Reordered(nn.Module):
    """Defined head first, run head last; a Linear used only through its weight; a grouped conv."""

    def __init__(self):
        super().__init__()
        self.out = nn.Linear(8, 3)
        self.side = nn.Linear(4, 4)  # never called as a module
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.first = nn.Conv2d(1, 8, 3, padding=1)

    def forward(self, x):
        x = self.grouped(torch.relu(self.first(x)))
        x = x.mean(dim=(2, 3)) + 0 * nn.functional.linear(x.mean(dim=(2, 3))[:, :4], self.side.weight).sum()
        return self.out(x)


def test_classifier_is_the_output_layer_and_depth_is_run_order():
    model = Reordered()
    kinds = layer_kinds(model, X)
    assert kinds["out"] == "classifier"
    assert list(kinds)[:3] == ["first", "grouped", "out"]  # run order, not definition order
    assert kinds["first"] == "conv_early" and kinds["grouped"] == "conv"
    assert conv_depth(model, X) == {"first": 0.0, "grouped": 1.0}


def test_layers_the_graph_cannot_prune_are_reported_and_left_dense():
    model = Reordered()
    dense = layer_plan(model, X).dense
    assert "side" in dense and "not called" in dense["side"]
    assert "grouped" in dense and "groups=2" in dense["grouped"]
    # Removing one of first's channels would break the grouped conv it feeds: found by trying it.
    assert "first" in dense and "cannot prune it" in dense["first"]
    assert filter_layers(model, prunable_layers(model), X) == []


def test_residual_depthwise_and_concat_groups():
    model = TinyNet(10)
    assert layer_plan(model, X).classifiers == {"head"}
    groups = coupled_layers(model, filter_layers(model, prunable_layers(model), X), X)
    assert groups["stem"] == ["stem", "block.dw", "block.pw"]  # residual add + depthwise: one group
    assert groups["branch_a"] == ["branch_a"] and groups["branch_b"] == ["branch_b"]  # concat: apart


def test_a_model_the_graph_cannot_trace_is_left_dense_not_crashed_on():
    import torchvision

    model = torchvision.models.shufflenet_v2_x0_5(num_classes=10).eval()
    x = torch.randn(1, 3, 32, 32)
    plan = layer_plan(model, x)
    assert plan.classifiers == {"fc"}
    assert set(plan.dense) == set(prunable_layers(model)) - {"fc"}
    assert all("cannot be built" in why for why in plan.dense.values())
    ratios = {n: 0.5 for n in prunable_layers(model)}
    result = get_pruner("fpgm")(model, ratios, get_pruner("fpgm").settings_type(), PruneContext(example_input=x))
    assert result.kept_channels == {}
    with torch.no_grad():
        torch.testing.assert_close(result.model(x), model(x))


def test_layers_that_fail_only_together_are_found_and_the_rest_pass_jointly(monkeypatch):
    """The probe's last resort: each layer passes alone, the set does not. Layers are added in
    run order and the one whose addition breaks the joint drop is left dense, so the layers it
    calls safe are safe together (the methods prune them together)."""
    from pruners import graph

    calls = []

    def fake_try_drop(model, names, example_input):
        calls.append(list(names))
        return "conflict" if {"a", "c"} <= set(names) else None

    monkeypatch.setattr(graph, "_try_drop", fake_try_drop)
    found = graph._unsafe(nn.Identity(), ["a", "b", "c", "d"], X)
    assert set(found) == {"c"} and "together with a, b: conflict" in found["c"]
    assert fake_try_drop(None, [n for n in "abcd" if n not in found], X) is None
    assert graph._unsafe(nn.Identity(), ["a", "b"], X) == {}  # the joint drop passes: one try
    assert calls[-1] == ["a", "b"]
