"""The contract every registered method honours, run over the whole registry and two models
(as Optuna runs one test class over every sampler). What a method must deliver follows from
the kind it declares (`Pruner.structural`, `Pruner.masked`), never from a list of names here."""
from __future__ import annotations

import copy
from functools import cache

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pruners.base import PruneContext, PruneResult
from pruners.graph import filter_layers
from pruners.layers import prunable_layers
from pruners.masking import apply_masks
from pruners.registry import PRUNERS, get_pruner
from pruners.surgery import out_channels, rebuild
from tests.pruners.helpers import randomize_bn_
from trainables.models import build_model

MODELS = ("simplecnn", "resnet20")
# Filter layers (convs, hidden FC) all get FILTER_RATIO, the filter fraction hybrid uses too, so
# every structural method must keep n - round(FILTER_RATIO * n) channels of an n-channel layer.
FILTER_RATIO, CLASSIFIER_RATIO = 0.25, 0.5
SETTINGS = {"magnitude_scope": "layer", "global_sparsity": 0.5, "taylor_batches": 2, "lottery_rounds": 2,
            "lottery_rewind": 0.0, "hybrid_filter_ratio": FILTER_RATIO, "hybrid_temperature": 4.0,
            "hybrid_alpha": 0.5}


def make_dense(model_name: str, init_seed: int = 0) -> nn.Module:
    torch.manual_seed(init_seed)
    return randomize_bn_(build_model(model_name, 1, 10, 8))


def make_ratios(model: nn.Module) -> dict[str, float]:
    filters = set(filter_layers(model, prunable_layers(model), torch.zeros(1, 1, 8, 8)))
    return {name: FILTER_RATIO if name in filters else CLASSIFIER_RATIO for name in prunable_layers(model)}


class DataUse:
    """Counts what the method read from the context's data callables."""

    def __init__(self) -> None:
        self.calls = 0


def make_ctx(model_name: str, seed: int, use: DataUse) -> PruneContext:
    """Everything data-dependent comes from `seed`, as in a trial."""
    gen = torch.Generator().manual_seed(seed)
    xs, ys = torch.randn(64, 1, 8, 8, generator=gen), torch.randint(0, 10, (64,), generator=gen)

    def batches():
        use.calls += 1
        for i in range(0, 64, 16):
            yield xs[i : i + 16], ys[i : i + 16]

    def retrain(model, masks):
        use.calls += 1
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        model.train()
        for i in range(0, 64, 16):
            opt.zero_grad()
            F.cross_entropy(model(xs[i : i + 16]), ys[i : i + 16]).backward()
            opt.step()
            apply_masks(model, masks)
        model.eval()

    def recalibrate(model):
        use.calls += 1
        model.train()
        with torch.no_grad():
            model(xs)
        model.eval()

    init = make_dense(model_name, init_seed=1).state_dict()  # lottery's rewind point k=0
    return PruneContext(example_input=xs[:2], batches=batches, retrain=retrain, recalibrate_bn=recalibrate,
                        retrain_from=lambda model, masks, k: retrain(model, masks), baseline_steps=100,
                        rewind_states={0: init})


# Settings that change what a method removes, run as cases of their own.
VARIANTS = {"taylor": {"weight": {}, "filter": {"taylor_granularity": "filter"}}}


def settings_of(method: str) -> dict:
    name, _, variant = method.partition(":")
    return {**SETTINGS, **VARIANTS.get(name, {}).get(variant, {})}


def pruner_of(method: str):
    return get_pruner(method.partition(":")[0])


def prune_fresh(method: str, model_name: str, seed: int = 0) -> tuple[PruneResult, DataUse]:
    use = DataUse()
    dense = make_dense(model_name)
    ctx = make_ctx(model_name, seed, use)
    torch.manual_seed(seed)  # as the trial does before pruning
    return pruner_of(method)(dense, make_ratios(dense), settings_of(method), ctx), use


@cache
def prune(method: str, model_name: str, seed: int = 0) -> tuple[PruneResult, DataUse]:
    """Cached: the tests below only read the result."""
    return prune_fresh(method, model_name, seed)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: a second intra-op thread only adds contention on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


CASES = [f"{m}:{v}" if v else m for m in sorted(PRUNERS) for v in (VARIANTS.get(m) or [""])]


@pytest.fixture(params=[(m, n) for m in CASES for n in MODELS], ids="-".join)
def case(request) -> tuple[str, str]:
    return request.param


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def tensors_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def same_result(a: PruneResult, b: PruneResult) -> bool:
    return (tensors_equal(a.model.state_dict(), b.model.state_dict()) and tensors_equal(a.masks, b.masks)
            and a.kept_channels == b.kept_channels)


def test_every_method_declares_what_it_removes():
    for pruner in PRUNERS.values():
        assert pruner.structural or pruner.masked, pruner.name
    for case in CASES:  # what one run removes is within what the method declared
        structural, masked = pruner_of(case).removes(settings_of(case))
        assert (structural or masked) and (structural <= pruner_of(case).structural) and \
            (masked <= pruner_of(case).masked), case


def test_result_carries_masks_and_kept_channels_exactly_as_declared(case):
    method, model_name = case
    result, _ = prune(method, model_name)
    structural, masked = pruner_of(method).removes(settings_of(method))
    assert bool(result.masks) == masked
    assert bool(result.kept_channels) == structural


def test_masked_methods_drop_the_exact_count_and_zero_it(case):
    method, model_name = case
    result, _ = prune(method, model_name)
    if not pruner_of(method).removes(settings_of(method))[1]:  # then it zeroes no single weight either
        assert result.masks == {}
        assert all(torch.count_nonzero(m.weight) == m.weight.numel() for m in prunable_layers(result.model).values())
        return
    ratios = make_ratios(make_dense(model_name))
    params = dict(result.model.named_parameters())
    assert set(result.masks) == {f"{name}.weight" for name in ratios}
    for name, ratio in ratios.items():
        mask = result.masks[f"{name}.weight"]
        assert mask.dtype == torch.bool and mask.shape == params[f"{name}.weight"].shape
        assert int((~mask).sum()) == round(ratio * mask.numel()), name
        assert torch.count_nonzero(params[f"{name}.weight"][~mask]) == 0, name


def test_structural_methods_keep_the_requested_channels_and_shrink_the_model(case):
    method, model_name = case
    result, _ = prune(method, model_name)
    dense = make_dense(model_name)
    dense_layers, layers = prunable_layers(dense), prunable_layers(result.model)
    if not pruner_of(method).removes(settings_of(method))[0]:
        assert n_params(result.model) == n_params(dense)
        assert all(layers[n].weight.shape == m.weight.shape for n, m in dense_layers.items())
        return
    assert set(result.kept_channels) == set(filter_layers(dense, dense_layers, torch.zeros(1, 1, 8, 8)))  # classifier excluded
    for name, kept in result.kept_channels.items():
        n = out_channels(dense_layers[name])
        assert len(kept) == n - round(FILTER_RATIO * n), name
        assert kept == sorted(set(kept)) and 0 <= kept[0] and kept[-1] < n, name
        assert out_channels(layers[name]) == len(kept), name
    assert n_params(result.model) < n_params(dense)
    # The kept indices describe the surgery completely: the baseline rebuilds to the same shapes.
    rebuilt = rebuild(dense, result.kept_channels, torch.zeros(1, 1, 8, 8))
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == \
        {k: v.shape for k, v in result.model.state_dict().items()}


def test_same_seed_gives_identical_results(case):
    method, model_name = case
    assert same_result(prune_fresh(method, model_name, seed=0)[0], prune(method, model_name, seed=0)[0])


def test_result_depends_on_the_seed_exactly_when_the_method_reads_data(case):
    # A method that reads no data must not draw random numbers either; one that reads the
    # (seed-dependent) data must actually use it.
    method, model_name = case
    (a, use), (b, _) = prune(method, model_name, seed=0), prune(method, model_name, seed=1)
    assert same_result(a, b) == (use.calls == 0)


def test_pruned_model_runs_with_finite_outputs(case):
    method, model_name = case
    result, _ = prune(method, model_name)
    out = result.model.eval()(torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(5)))
    assert out.shape == (4, 10) and torch.isfinite(out).all()


def test_dense_baseline_is_left_untouched(case):
    method, model_name = case
    dense = make_dense(model_name)
    before = copy.deepcopy(dense.state_dict())
    pruner_of(method)(dense, make_ratios(dense), settings_of(method), make_ctx(model_name, 0, DataUse()))
    assert all(torch.equal(before[k], v) for k, v in dense.state_dict().items())
    assert not dense.training
