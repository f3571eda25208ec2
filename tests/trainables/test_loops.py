"""Fine-tuning keeps pruned weights exactly zero; a diverging run fails with its reason."""
from __future__ import annotations

import copy

import pytest
import torch

from pruners.base import PruneContext
from pruners.registry import get_pruner
from trainables.baseline import normalizer
from trainables.loops import DivergedError, evaluate, recalibrate_bn, train
from trainables.models import SimpleCNN
from tests.trainables.helpers import small_digits


def test_pruned_weights_stay_exactly_zero_through_fine_tuning_with_momentum_decay_and_distillation():
    data = small_digits()
    norm = normalizer(data, False)
    torch.manual_seed(0)
    dense = SimpleCNN(1, 10, 8)
    train(dense, data.train, norm, epochs=1, lr=0.05, batch_size=64, seed=0)
    ratios = {"conv1": 0.2, "conv2": 0.6, "fc1": 0.95, "fc2": 0.4}
    result = get_pruner("magnitude")(dense, ratios, {}, PruneContext(example_input=norm(data.val.x[:1])))
    model = result.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, data.train, norm, epochs=2, lr=0.1, batch_size=32, seed=1, masks=result.masks,
          teacher=copy.deepcopy(dense), weight_decay=1e-3)
    params = dict(model.named_parameters())
    for name, mask in result.masks.items():
        assert torch.count_nonzero(params[name][~mask]) == 0, name  # exactly 0, not small
        assert not torch.equal(params[name][mask], before[name][mask])  # the rest did train


def test_training_learns_digits():
    data = small_digits(800)
    norm = normalizer(data, False)
    torch.manual_seed(0)
    model = SimpleCNN(1, 10, 8)
    train(model, data.train, norm, epochs=4, lr=0.05, batch_size=64, seed=0)
    assert evaluate(model, data.val, norm) > 0.85


def test_divergence_raises_with_the_reason():
    data = small_digits()
    torch.manual_seed(0)
    with pytest.raises(DivergedError, match="loss became"):
        train(SimpleCNN(1, 10, 8), data.train, normalizer(data, False), epochs=2, lr=1e6, batch_size=64, seed=0)


def test_bn_recalibration_changes_statistics_but_not_weights():
    data = small_digits()
    norm = normalizer(data, False)
    torch.manual_seed(0)
    model = SimpleCNN(1, 10, 8)
    weights = {k: v.clone() for k, v in model.named_parameters()}
    recalibrate_bn(model, data.train, norm, n_batches=3, batch_size=64)
    assert not torch.allclose(model.bn1.running_mean, torch.zeros_like(model.bn1.running_mean))
    assert model.bn1.momentum == 0.1 and not model.training
    for k, v in model.named_parameters():
        assert torch.equal(v, weights[k])
