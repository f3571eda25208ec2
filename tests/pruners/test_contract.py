"""The contract every registered method honours, run over the whole registry (as Optuna runs
one test class over every sampler)."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from pruners.base import PruneContext
from pruners.masking import apply_masks
from pruners.registry import PRUNERS, get_pruner
from trainables.models import SimpleCNN

RATIOS = {"conv1": 0.1, "conv2": 0.5, "fc1": 0.9, "fc2": 0.3}
SETTINGS = {"magnitude_scope": "layer", "global_sparsity": 0.5, "taylor_batches": 2, "lottery_rounds": 2,
            "lottery_rewind_iter": 0, "hybrid_filter_ratio": 0.25, "hybrid_temperature": 4.0, "hybrid_alpha": 0.5}
FILTER_METHODS = {"fpgm"}  # ratio = fraction of filters, no weight masks
STRUCTURAL_KINDS = ("conv1", "conv2", "fc1")


def make_dense():
    torch.manual_seed(0)
    return SimpleCNN(1, 10, 8, width=8).eval()


def make_ctx(seed: int = 0) -> PruneContext:
    gen = torch.Generator().manual_seed(123)
    xs, ys = torch.randn(64, 1, 8, 8, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    init = make_dense().state_dict()

    def batches():
        for i in range(0, 64, 16):
            yield xs[i : i + 16], ys[i : i + 16]

    def retrain(model, masks):
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        model.train()
        for x, y in batches():
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            apply_masks(model, masks)
        model.eval()

    def recalibrate(model):
        model.train()
        with torch.no_grad():
            for x, _ in batches():
                model(x)
        model.eval()

    return PruneContext(example_input=xs[:2], seed=seed, batches=batches, retrain=retrain,
                        rewind_states={0: {k: v.clone() for k, v in init.items()}}, recalibrate_bn=recalibrate)


def prune(method: str):
    torch.manual_seed(0)
    return get_pruner(method)(make_dense(), RATIOS, SETTINGS, make_ctx())


@pytest.fixture(params=sorted(PRUNERS))
def method(request):
    return request.param


def test_masks_are_bool_and_shaped_like_their_parameters(method):
    result = prune(method)
    params = dict(result.model.named_parameters())
    for name, mask in result.masks.items():
        assert mask.dtype == torch.bool
        assert mask.shape == params[name].shape
        assert torch.all(params[name][~mask] == 0)


def test_achieved_sparsity_matches_the_request(method):
    result = prune(method)
    layers = dict(result.model.named_modules())
    dense_layers = dict(make_dense().named_modules())
    if method in FILTER_METHODS:
        for name in STRUCTURAL_KINDS:
            n = dense_layers[name].weight.shape[0]
            assert layers[name].weight.shape[0] == n - round(RATIOS[name] * n)
        return
    for name, ratio in RATIOS.items():
        mask = result.masks[f"{name}.weight"]
        assert int((~mask).sum()) == round(ratio * mask.numel()), name


def test_output_is_deterministic_per_seed(method):
    a, b = prune(method), prune(method)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert {k: v.tolist() for k, v in a.masks.items()} == {k: v.tolist() for k, v in b.masks.items()}


def test_forward_pass_has_no_nan(method):
    result = prune(method)
    out = result.model.eval()(torch.randn(4, 1, 8, 8))
    assert out.shape == (4, 10)
    assert torch.isfinite(out).all()


def test_dense_baseline_is_left_untouched(method):
    dense = make_dense()
    before = copy.deepcopy(dense.state_dict())
    get_pruner(method)(dense, RATIOS, SETTINGS, make_ctx())
    after = dense.state_dict()
    for k in before:
        assert torch.equal(before[k], after[k]), k
    assert not dense.training
