"""Magnitude: exact per-layer counts, a clean threshold, and the global variant."""
from __future__ import annotations

import torch

from pruners.base import PruneContext
from pruners.registry import get_pruner
from trainables.models import SimpleCNN

RATIOS = {"conv1": 0.2, "conv2": 0.55, "fc1": 0.93, "fc2": 0.37}


def dense():
    torch.manual_seed(1)
    return SimpleCNN(3, 10, 32)


def ctx():
    return PruneContext(example_input=torch.randn(1, 3, 32, 32))


def test_per_layer_counts_are_exact_to_one_weight_and_threshold_is_clean():
    model = dense()
    result = get_pruner("magnitude")(model, RATIOS, {"magnitude_scope": "layer"}, ctx())
    for name, ratio in RATIOS.items():
        w = getattr(model, name).weight.detach().abs()
        mask = result.masks[f"{name}.weight"]
        assert int((~mask).sum()) == round(ratio * w.numel())
        # Clean threshold: every dropped |w| <= every kept |w|.
        assert w[~mask].max() <= w[mask].min()
        assert torch.all(getattr(result.model, name).weight[~mask] == 0)
        assert torch.equal(getattr(result.model, name).weight[mask], getattr(model, name).weight[mask])


def test_global_variant_hits_the_overall_ratio_with_one_threshold():
    model = dense()
    result = get_pruner("magnitude")(model, {}, {"magnitude_scope": "global", "global_sparsity": 0.8}, ctx())
    total = sum(m.numel() for m in result.masks.values())
    dropped = sum(int((~m).sum()) for m in result.masks.values())
    assert dropped == round(0.8 * total)
    kept_min = min(getattr(model, n.removesuffix(".weight")).weight.abs()[m].min() for n, m in result.masks.items())
    dropped_max = max(getattr(model, n.removesuffix(".weight")).weight.abs()[~m].max() for n, m in result.masks.items())
    assert dropped_max <= kept_min
    per_layer = [1 - float(m.float().mean()) for m in result.masks.values()]
    assert max(per_layer) - min(per_layer) > 0.1  # global: layers end up with different ratios
