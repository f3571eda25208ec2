"""Hybrid: FPGM filters, then magnitude weights on the smaller model, BN recalibrated, int8 after."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from pruners.base import Distillation, PruneContext
from pruners.quantize import int8_scales, int8_values, quantize_int8_
from pruners.registry import get_pruner
from trainables.models import SimpleCNN

RATIOS = {"conv1": 0.1, "conv2": 0.5, "fc1": 0.9, "fc2": 0.3}
SETTINGS = {"hybrid_filter_ratio": 0.25, "hybrid_temperature": 4.0, "hybrid_alpha": 0.5}


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return SimpleCNN(3, 10, 16, width=8).eval()


def run(settings=SETTINGS, recalibrate=None):
    ctx = PruneContext(example_input=torch.randn(2, 3, 16, 16), recalibrate_bn=recalibrate)
    return get_pruner("hybrid")(make_model(), RATIOS, settings, ctx)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_filters_removed_then_weights_masked_on_the_smaller_model():
    result = run()
    model = result.model
    assert n_params(model) < n_params(make_model())
    assert (model.conv1.out_channels, model.conv2.out_channels, model.fc1.out_features) == (6, 12, 192)
    assert model.fc2.out_features == 10 and "fc2" not in result.kept_channels
    params = dict(model.named_parameters())
    for name, ratio in RATIOS.items():
        mask = result.masks[f"{name}.weight"]
        assert mask.shape == params[f"{name}.weight"].shape
        assert int((~mask).sum()) == round(ratio * mask.numel())
        assert torch.all(params[f"{name}.weight"][~mask] == 0)


def test_asks_for_int8_and_distillation_and_recalibrates_bn():
    seen = []
    result = run(recalibrate=seen.append)
    assert result.weight_bits == 8 and result.distill == Distillation(4.0, 0.5)  # the settings travel
    assert len(seen) == 1 and seen[0] is result.model


def test_quantized_masked_weights_lie_on_the_int8_grid():
    result = run()
    model, names = result.model, list(result.masks)
    scales = quantize_int8_(model, names)
    params = dict(model.named_parameters())
    for name in names:
        w, s = params[name].detach(), scales[name].view(-1, *[1] * (params[name].dim() - 1))
        q = w / s
        torch.testing.assert_close(q, q.round(), atol=1e-4, rtol=0)
        assert q.abs().max() <= 127 + 1e-4
        assert torch.all(w[~result.masks[name]] == 0)  # zeros stay exactly zero
        assert torch.equal(int8_values(w, scales[name]).float() * s, w)  # int8 storage is exact


def test_quantize_guards_zero_rows_and_uses_the_full_range():
    layer = nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight[1] = 0
    scales = quantize_int8_(layer, ["weight"])
    assert torch.all(layer.weight[1] == 0) and torch.isfinite(layer.weight).all()
    assert scales["weight"][1] == 1.0
    assert int8_values(layer.weight, scales["weight"])[[0, 2]].abs().amax(dim=1).tolist() == [127, 127]
    assert torch.equal(int8_scales(layer.weight), scales["weight"])  # already on the grid


def test_rejects_filter_ratio_out_of_range():
    with pytest.raises(ValueError):
        run({"hybrid_filter_ratio": 0.9})
