"""Importance scores as pure functions: what each one reads and how a coupled group adds up
(LAMP, FPGM and Taylor have their formula tests in test_allocation, test_fpgm and test_taylor)."""
from __future__ import annotations

import torch
from torch import nn

from pruners.importance import fpgm_scores, group_scores, magnitude_scores, root_scores, weight_scores
from pruners.surgery import ChannelGroup


def test_magnitude_is_the_detached_absolute_value():
    w = torch.tensor([[-2.0, 0.5], [0.0, 3.0]], requires_grad=True)
    s = magnitude_scores(w)
    assert torch.equal(s, torch.tensor([[2.0, 0.5], [0.0, 3.0]])) and not s.requires_grad


def test_weight_scores_are_keyed_by_layer_name_and_leave_the_model_alone():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scores = weight_scores(model, ["2", "0"])
    assert list(scores) == ["2", "0"]
    assert torch.equal(scores["0"], model[0].weight.detach().abs())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_group_scores_add_every_channel_removed_with_the_root_channel():
    # Root "a" (3 channels); "b" tied by a residual addition (same index); "cat" holds a's
    # channels shifted by 2 (a concatenation) and is not touched at its first two.
    group = ChannelGroup("a", 3, {"a": {0: 0, 1: 1, 2: 2}, "b": {0: 0, 1: 1, 2: 2}, "cat": {0: 2, 1: 3, 2: 4}})
    scores = {"a": torch.tensor([1.0, 2.0, 3.0]), "b": torch.tensor([10.0, 20.0, 30.0]),
              "cat": torch.tensor([100.0, 200.0, 0.1, 0.2, 0.3])}
    assert torch.allclose(group_scores(group, scores), torch.tensor([11.1, 22.2, 33.3], dtype=torch.float64))


def test_root_scores_read_only_each_groups_root():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4))
    groups = [ChannelGroup("0", 4, {"0": {i: i for i in range(4)}, "2": {i: i for i in range(4)}})]
    scores = root_scores(model, groups, fpgm_scores)
    assert list(scores) == ["0"] and torch.equal(scores["0"], fpgm_scores(model[0].weight))
