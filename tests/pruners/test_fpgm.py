"""FPGM: removes the filters nearest the geometric median, physically (smaller, same function)."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from pruners.base import PruneContext
from pruners.fpgm import fpgm_drop_indices
from pruners.registry import get_pruner
from pruners.surgery import keep_to_drop, rebuild, remove_channels
from tests.pruners.helpers import randomize_bn_
from trainables.models import SimpleCNN

RATIOS = {"conv1": 0.25, "conv2": 0.5, "fc1": 0.75, "fc2": 0.5}  # fc2 is the classifier
SIDE = 32 // 4  # spatial side after the two pools


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return randomize_bn_(SimpleCNN(3, 10, 32))


def example() -> torch.Tensor:
    return torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def reference_drop(weight: torch.Tensor, ratio: float) -> list[int]:
    """The paper's criterion written out independently: summed distance to the other filters."""
    w = weight.detach().flatten(1).double()
    n = w.shape[0]
    others = [[j for j in range(n) if j != i] for i in range(n)]
    scores = [float((w[i] - w[others[i]]).norm(dim=1).sum()) for i in range(n)]
    n_drop = min(round(ratio * n), n - 1)
    return sorted(sorted(range(n), key=lambda i: (scores[i], i))[:n_drop])


def clustered_filters_(model: nn.Module) -> nn.Module:
    """Give every filter layer three clusters of filters (about 5/8, 2/8 and 1/8 of them, the
    smallest far out), as redundant trained filters look. Random-init filters are not enough:
    in high dimension the summed distance to the others ranks them like the distance to the
    mean, so a distance-to-mean FPGM would pass; with clusters the two criteria disagree."""
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name in ("conv1", "conv2", "fc1"):
            weight = getattr(model, name).weight
            n, dim = weight.shape[0], weight[0].numel()
            centers = torch.randn(3, dim, generator=gen) * torch.tensor([[1.0], [1.0], [4.0]])
            cluster = torch.tensor([0] * (n - n // 4 - n // 8) + [1] * (n // 4) + [2] * (n // 8))
            cluster = cluster[torch.randperm(n, generator=gen)]
            weight.copy_((centers[cluster] + 0.3 * torch.randn(n, dim, generator=gen)).view_as(weight))
    return model


def prune(model, ratios=RATIOS):
    return get_pruner("fpgm")(model, ratios, {}, PruneContext(example_input=example()))


def flops(model) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(example())
    return counter.get_total_flops()


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_drops_exactly_the_reference_filters():
    base = clustered_filters_(make_model())
    result = prune(base)
    for name in ("conv1", "conv2", "fc1"):
        weight = getattr(base, name).weight
        assert keep_to_drop(result.kept_channels[name], weight.shape[0]) == reference_drop(weight, RATIOS[name])


def test_removes_filters_nearest_the_median_not_the_outliers():
    weight = torch.zeros(5, 2, 1, 1)
    weight[:, 0, 0, 0] = torch.tensor([0.0, 0.1, -0.1, 0.05, 5.0])  # filter 4 is the outlier
    assert fpgm_drop_indices(weight, 0.4) == [0, 3]
    assert 4 not in fpgm_drop_indices(weight, 0.8)


def test_criterion_is_the_geometric_median_not_the_mean():
    # Three filters close together and two far out along one direction: the far ones pull the
    # mean to filter 3, while the geometric median (smallest summed distance) is filter 2.
    weight = torch.zeros(5, 2, 1, 1)
    weight[:, :, 0, 0] = torch.tensor([[0.0, 1.0], [0.1, 1.0], [0.2, 1.0], [5.0, 1.0], [10.0, 1.0]])
    flat = weight.flatten(1)
    nearest_mean = (flat - flat.mean(dim=0)).norm(dim=1).argsort()
    assert nearest_mean[:2].tolist() == [3, 2]  # the example separates the two criteria
    assert fpgm_drop_indices(weight, 0.2) == [2]
    assert fpgm_drop_indices(weight, 0.4) == [1, 2]


def test_drop_count_ties_and_cap():
    same = torch.ones(4, 3)
    assert fpgm_drop_indices(same, 0.5) == [0, 1]  # equal scores: lower index first
    assert len(fpgm_drop_indices(torch.randn(2, 3), 0.8)) == 1  # round(1.6) = 2, capped at n - 1
    assert fpgm_drop_indices(torch.randn(1, 3), 0.9) == []
    with pytest.raises(ValueError):
        fpgm_drop_indices(same, 1.0)


def test_surgery_shrinks_conv_bn_and_next_layers():
    base = make_model()
    model = prune(base).model
    assert (model.conv1.out_channels, model.bn1.num_features, model.conv2.in_channels) == (24, 24, 24)
    assert (model.conv2.out_channels, model.bn2.num_features) == (32, 32)
    assert model.fc1.in_features == 32 * SIDE * SIDE and model.fc1.out_features == 64
    assert model.fc2.in_features == 64
    assert n_params(model) < n_params(base) and flops(model) < flops(base)
    assert base.conv1.out_channels == 32 and base.fc1.in_features == 64 * SIDE * SIDE  # untouched


def test_kept_weights_are_the_baseline_slices():
    base = make_model()
    result = prune(base)
    k1, k2, kf = (result.kept_channels[n] for n in ("conv1", "conv2", "fc1"))
    m = result.model
    assert torch.equal(m.conv2.weight, base.conv2.weight[k2][:, k1])
    assert torch.equal(m.bn2.running_var, base.bn2.running_var[k2])
    cols = [c * SIDE * SIDE + p for c in k2 for p in range(SIDE * SIDE)]  # flatten is channel-major
    assert torch.equal(m.fc1.weight, base.fc1.weight[kf][:, cols])
    assert torch.equal(m.fc2.weight, base.fc2.weight[:, kf])


def test_output_equals_dense_model_with_dropped_filters_zeroed():
    base = make_model()
    result = prune(base)
    masked = make_model()
    with torch.no_grad():
        for conv, bn in (("conv1", "bn1"), ("conv2", "bn2"), ("fc1", None)):
            layer = getattr(masked, conv)
            dropped = keep_to_drop(result.kept_channels[conv], layer.weight.shape[0])
            layer.weight[dropped] = 0
            layer.bias[dropped] = 0
            if bn:  # eval-mode BN outputs exactly its bias where weight is 0
                getattr(masked, bn).weight[dropped] = 0
                getattr(masked, bn).bias[dropped] = 0
    result.model.eval()
    with torch.no_grad():
        torch.testing.assert_close(result.model(example()), masked(example()), atol=1e-5, rtol=0)


def test_classifier_is_never_pruned():
    base = make_model()
    result = prune(base, {"fc2": 0.5})
    assert result.model.fc2.out_features == 10 and "fc2" not in result.kept_channels
    assert n_params(result.model) == n_params(base)


def test_rebuild_reproduces_the_pruned_model_exactly():
    base = make_model()
    result = prune(base)
    rebuilt = rebuild(base, result.kept_channels, example())
    expected, got = result.model.state_dict(), rebuilt.state_dict()
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_resnet18_with_residual_coupling():
    torch.manual_seed(0)
    base = torchvision.models.resnet18(num_classes=10).eval()
    # layer1.0.conv2 and layer1.1.conv2 feed the same residual sum: one group prunes both.
    ratios = {n: 0.3 for n in ("layer1.0.conv1", "layer1.0.conv2", "layer1.1.conv2", "layer3.1.conv1", "fc")}
    x = torch.randn(1, 3, 32, 32)
    result = get_pruner("fpgm")(base, ratios, {}, PruneContext(example_input=x))
    model, kept = result.model, result.kept_channels
    assert model(x).shape == (1, 10) and n_params(model) < n_params(base)
    assert model.layer1[0].conv1.out_channels == 64 - round(0.3 * 64)
    assert model.layer3[1].conv1.out_channels == 256 - round(0.3 * 256)
    # Scored on the group's root, carried to every coupled layer, the stem conv included.
    assert kept["layer1.0.conv2"] == kept["layer1.1.conv2"] == kept["conv1"]
    assert model.layer1[1].conv2.out_channels == model.conv1.out_channels == len(kept["conv1"])
    assert model.fc.out_features == 10
    rebuilt = rebuild(base, kept, x)
    assert all(torch.equal(v, rebuilt.state_dict()[k]) for k, v in model.state_dict().items())


def test_surgery_rejects_conflicting_coupled_indices_and_emptying_a_layer():
    x = torch.randn(1, 3, 32, 32)
    resnet = torchvision.models.resnet18(num_classes=10)
    with pytest.raises(ValueError, match="pruned together"):
        remove_channels(resnet, {"layer1.0.conv2": [0, 1], "layer1.1.conv2": [2, 3]}, x)
    with pytest.raises(ValueError, match="no channels"):
        remove_channels(make_model(), {"conv1": list(range(32))}, example())


def test_baseline_untouched_and_train_mode_kept():
    base = make_model().train()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    result = prune(base)
    # Tracing runs a forward: it must neither switch modes nor update BN running statistics.
    assert result.model.training and base.training
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())
    assert torch.equal(result.model.bn1.running_mean, before["bn1.running_mean"][result.kept_channels["conv1"]])


def test_matrix_product_distances_match_the_direct_pairwise_sum():
    """The fast criterion (one float64 matrix product) against the direct pairwise differences,
    on filters that share a large common offset: where ||a||^2 + ||b||^2 - 2ab cancels most."""
    from pruners.importance import fpgm_scores

    g = torch.Generator().manual_seed(3)
    weight = 100.0 + 0.01 * torch.randn(24, 16, 3, 3, generator=g)
    flat = weight.flatten(1).double()
    direct = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist").sum(dim=1)
    torch.testing.assert_close(fpgm_scores(weight), direct, rtol=1e-6, atol=0)
    assert fpgm_drop_indices(weight, 0.5) == sorted(torch.argsort(direct, stable=True)[:12].tolist())
