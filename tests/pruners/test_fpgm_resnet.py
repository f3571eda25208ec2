"""FPGM on ResNet-20: channels coupled through residual additions are removed together, the
pruned model computes what the dense model computes with those channels zeroed, and the kept
indices alone rebuild it."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from pruners.base import PruneContext
from pruners.layers import layer_kinds
from pruners.registry import get_pruner
from pruners.surgery import keep_to_drop, rebuild
from tests.pruners.helpers import randomize_bn_
from trainables.models import build_model

# The residual streams of ResNet-20 (option-B projections at the stage transitions).
STREAMS = (
    ("conv1", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2"),
    ("layer2.0.conv2", "layer2.0.shortcut.0", "layer2.1.conv2", "layer2.2.conv2"),
    ("layer3.0.conv2", "layer3.0.shortcut.0", "layer3.1.conv2", "layer3.2.conv2"),
)


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return randomize_bn_(build_model("resnet20", 3, 10, 16))


def example() -> torch.Tensor:
    return torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def ratios(model) -> dict[str, float]:
    # Different ratios along the depth, and for the members of a stream (the root's wins).
    names = [n for n, k in layer_kinds(model).items() if k != "classifier"]
    return {n: 0.1 + 0.5 * i / len(names) for i, n in enumerate(names)}


def prune(model):
    return get_pruner("fpgm")(model, ratios(model), {}, PruneContext(example_input=example()))


def bn_after(model) -> dict[str, str]:
    """Each conv's BatchNorm: the next one in definition order (conv, bn pairs in every block)."""
    out, pending = {}, None
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            pending = name
        elif isinstance(m, nn.BatchNorm2d):
            out[pending] = name
    return out


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def flops(model) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(example())
    return counter.get_total_flops()


def test_coupled_layers_share_kept_channels_and_every_one_is_recorded():
    base = make_model()
    result = prune(base)
    modules, original = dict(result.model.named_modules()), dict(base.named_modules())
    for stream in STREAMS:
        kept = result.kept_channels[stream[0]]
        assert 0 < len(kept) < original[stream[0]].out_channels
        for name in stream:
            assert result.kept_channels[name] == kept, name
            assert modules[name].out_channels == len(kept)
    assert "fc" not in result.kept_channels and result.model.fc.out_features == 10
    assert n_params(result.model) < n_params(base) and flops(result.model) < flops(base)


def test_output_equals_dense_model_with_dropped_channels_zeroed():
    base = make_model()
    result = prune(base)
    masked = make_model()
    modules, bns = dict(masked.named_modules()), bn_after(masked)
    with torch.no_grad():
        # Zero every coupled conv and BN feeding a residual add, or the add refills the channel.
        for name, kept in result.kept_channels.items():
            conv = modules[name]
            dropped = keep_to_drop(kept, conv.out_channels)
            conv.weight[dropped] = 0
            if conv.bias is not None:
                conv.bias[dropped] = 0
            modules[bns[name]].weight[dropped] = 0  # eval BN then outputs exactly its bias: 0
            modules[bns[name]].bias[dropped] = 0
    result.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(result.model(example()), masked(example()), atol=1e-5, rtol=0)


def test_rebuild_reproduces_the_state_dict_exactly():
    base = make_model()
    result = prune(base)
    expected, got = result.model.state_dict(), rebuild(base, result.kept_channels, example()).state_dict()
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_hybrid_filter_step_records_every_coupled_layer_too():
    base = make_model()
    ctx = PruneContext(example_input=example())
    result = get_pruner("hybrid")(base, ratios(base), {"hybrid_filter_ratio": 0.25}, ctx)
    for stream in STREAMS:
        assert all(result.kept_channels[n] == result.kept_channels[stream[0]] for n in stream)
    rebuilt = rebuild(base, result.kept_channels, example())  # the structure, before weight masks
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in result.model.state_dict().items()}
