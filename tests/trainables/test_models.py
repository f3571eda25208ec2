"""Every registered model builds for digits (1x8x8) and CIFAR (3x32x32) and has the documented
layer structure."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from pruners.layers import layer_kinds, prunable_layers
from trainables.models import MODELS, build_model

SHAPES = [(1, 10, 8), (3, 10, 32)]  # (in_channels, classes, side): digits, CIFAR-10


@pytest.mark.parametrize("in_channels,num_classes,side", SHAPES)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_builds_and_forward_shape(name, in_channels, num_classes, side):
    torch.manual_seed(0)
    model = build_model(name, in_channels, num_classes, side).eval()
    with torch.no_grad():
        out = model(torch.randn(2, in_channels, side, side))
    assert out.shape == (2, num_classes) and torch.isfinite(out).all()
    kinds = layer_kinds(model)
    assert list(kinds.values())[0] == "conv_early" and list(kinds.values())[-1] == "classifier"


def convs_and_linears(model) -> tuple[list[str], list[str]]:
    layers = prunable_layers(model)
    return ([n for n, m in layers.items() if isinstance(m, nn.Conv2d)],
            [n for n, m in layers.items() if isinstance(m, nn.Linear)])


@pytest.mark.parametrize("name,n_main", [("resnet20", 19), ("resnet56", 55)])
def test_cifar_resnet_depth_and_projection_shortcuts(name, n_main):
    convs, linears = convs_and_linears(build_model(name, 3, 10, 32))
    projections = [n for n in convs if "shortcut" in n]
    assert len(convs) - len(projections) == n_main and linears == ["fc"]
    assert projections == ["layer2.0.shortcut.0", "layer3.0.shortcut.0"]  # only where shapes change


def test_cifar_resnet20_size_and_final_map():
    model = build_model("resnet20", 1, 10, 8)
    assert 0.26e6 < sum(p.numel() for p in model.parameters()) < 0.28e6  # the paper's 0.27M
    feats = model.layer3(model.layer2(model.layer1(model.conv1(torch.randn(1, 1, 8, 8)))))
    assert feats.shape == (1, 64, 2, 2)


@pytest.mark.parametrize("name,n_convs", [("vgg11", 8), ("vgg16", 13)])
def test_vgg_layers_and_pools_limited_on_small_inputs(name, n_convs):
    for side, pools in ((32, 5), (8, 3)):
        model = build_model(name, 1, 10, side)
        convs, linears = convs_and_linears(model)
        assert len(convs) == n_convs and len(linears) == 2
        assert sum(isinstance(m, nn.MaxPool2d) for m in model.features) == pools
        assert model.classifier[0].in_features == 512  # the map ends at 1x1 either way


def test_resnet18_is_torchvision_with_adapted_stem():
    model = build_model("resnet18", 1, 7, 8)
    assert model.conv1.in_channels == 1 and model.conv1.out_channels == 64 and model.fc.out_features == 7


def test_unknown_model_and_too_small_input_give_clear_errors():
    with pytest.raises(KeyError, match="unknown model 'nope'; known: .*resnet20"):
        build_model("nope", 1, 10, 8)
    with pytest.raises(ValueError, match="at least 4x4"):
        build_model("simplecnn", 1, 10, 2)
