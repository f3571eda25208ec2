"""Taylor pruning: importance is |dL/dw * w| accumulated over batches, gradients fresh per batch."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from pruners import taylor as taylor_mod
from pruners.base import PruneContext
from pruners.importance import taylor_scores
from pruners.registry import get_pruner
from trainables.models import SimpleCNN

RATIOS = {"conv1": 0.25, "conv2": 0.5, "fc1": 0.9, "fc2": 0.3}
LOSS = nn.functional.cross_entropy


def make_model() -> nn.Module:
    torch.manual_seed(0)
    model = SimpleCNN(1, 10, 8, width=4)
    # Non-trivial BatchNorm statistics, so that a train-mode forward would visibly change them.
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    return model


def make_batches(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randn(6, 1, 8, 8, generator=g), torch.randint(0, 10, (6,), generator=g))
        for _ in range(n)
    ]


def importance(model, batches, n=None):
    return taylor_scores(model, list(RATIOS), iter(batches), n or len(batches), LOSS)


def state_copy(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_registered():
    assert get_pruner("taylor") is taylor_mod.taylor


def test_importance_is_hand_computed_sum_over_batches():
    model, batches = make_model(), make_batches(2)
    model.eval()
    weights = [getattr(model, name).weight for name in RATIOS]
    expected = [torch.zeros_like(w) for w in weights]
    for x, y in batches:
        grads = torch.autograd.grad(LOSS(model(x), y), weights)
        expected = [e + (g * w).abs() for e, g, w in zip(expected, grads, weights)]
    got = importance(model, batches)
    for name, e in zip(RATIOS, expected):
        torch.testing.assert_close(got[name], e.detach(), rtol=0, atol=1e-6)


def test_accumulates_rather_than_keeping_last_batch():
    model, (b1, b2) = make_model(), make_batches(2)
    both, last = importance(model, [b1, b2]), importance(model, [b2])
    for name in both:
        assert not torch.allclose(both[name], last[name])


def test_gradients_fresh_per_batch():
    # Summing per-batch scores only matches if batch 2's gradient excludes batch 1's.
    model, (b1, b2) = make_model(), make_batches(2)
    # Stale gradients left on the model must not leak into the scores either.
    for p in model.parameters():
        p.grad = torch.full_like(p, 100.0)
    both = importance(model, [b1, b2])
    separate = [importance(model, [b1]), importance(model, [b2])]
    for name in both:
        summed = separate[0][name] + separate[1][name]
        torch.testing.assert_close(both[name], summed, rtol=0, atol=1e-6)


def test_only_first_n_batches_used():
    model, batches = make_model(), make_batches(3)
    first_two = importance(model, batches[:2])
    assert all(torch.equal(importance(model, batches, n=2)[k], v) for k, v in first_two.items())


def test_prune_sparsity_ranking_and_input_untouched():
    model, batches = make_model(), make_batches(3)
    model.train()
    before = state_copy(model)
    ctx = PruneContext(example_input=batches[0][0], batches=lambda: iter(batches), loss_fn=LOSS)
    result = get_pruner("taylor")(model, RATIOS, {"taylor_batches": 2}, ctx)

    # Input untouched, BatchNorm statistics included (scoring runs in eval mode), mode kept.
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training and result.model.training
    assert torch.equal(result.model.bn1.running_mean, before["bn1.running_mean"])

    scores = importance(model, batches[:2])
    pruned_params = dict(result.model.named_parameters())
    for name, ratio in RATIOS.items():
        key = f"{name}.weight"
        mask = result.masks[key]
        assert int((~mask).sum()) == round(ratio * mask.numel())
        assert scores[name][mask].min() >= scores[name][~mask].max()
        assert torch.all(pruned_params[key][~mask] == 0)
        assert torch.equal(pruned_params[key][mask], before[key][mask])


def test_missing_data_raises_and_short_data_is_clipped_with_a_note():
    model, batches = make_model(), make_batches(2)
    ctx = PruneContext(example_input=batches[0][0])
    with pytest.raises(ValueError, match="batches is None"):
        taylor_mod.taylor(model, RATIOS, {"taylor_batches": 2}, ctx)
    with pytest.raises(ValueError, match="no batch"):
        taylor_mod.taylor(model, RATIOS, {"taylor_batches": 2},
                          PruneContext(example_input=batches[0][0], batches=lambda: iter(())))
    ctx = PruneContext(example_input=batches[0][0], batches=lambda: iter(batches))
    for granularity in taylor_mod.GRANULARITIES:
        short = taylor_mod.taylor(model, RATIOS, {"taylor_batches": 6, "taylor_granularity": granularity}, ctx)
        exact = taylor_mod.taylor(model, RATIOS, {"taylor_batches": 2, "taylor_granularity": granularity}, ctx)
        assert short.notes == ["taylor_batches=6 but the training data has only 2 batches: importance summed over 2"]
        assert exact.notes == []
        assert short.kept_channels == exact.kept_channels  # the sum over the 2 batches there are
        assert all(torch.equal(short.masks[k], exact.masks[k]) for k in exact.masks)


# ---- filter granularity (Molchanov et al. 2019) ------------------------------------------------

FILTER = {"taylor_batches": 2, "taylor_granularity": "filter"}


def prune_filters(model, batches, ratios=RATIOS):
    ctx = PruneContext(example_input=batches[0][0], batches=lambda: iter(batches), loss_fn=LOSS)
    return get_pruner("taylor")(model, ratios, FILTER, ctx)


def test_filter_importance_squares_the_filters_summed_gw_per_batch_then_accumulates():
    model, batches = make_model(), make_batches(2)
    model.eval()
    weights = [getattr(model, name).weight for name in RATIOS]
    expected = [torch.zeros(w.shape[0], dtype=torch.float64) for w in weights]
    for x, y in batches:
        grads = torch.autograd.grad(LOSS(model(x), y), weights)
        # Sum over the filter FIRST, then square (not the sum of |g*w|, nor of (g*w)^2), per batch.
        expected = [e + (g.double() * w.double()).flatten(1).sum(1) ** 2 for e, g, w in zip(expected, grads, weights)]
    got = taylor_scores(model, list(RATIOS), iter(batches), 2, LOSS, "filter")
    for name, e in zip(RATIOS, expected):
        assert got[name].shape == (getattr(model, name).weight.shape[0],)
        torch.testing.assert_close(got[name], e.detach(), rtol=1e-9, atol=0)
    # Accumulated over batches, not the square of the summed gradient.
    separate = [taylor_scores(model, list(RATIOS), iter([b]), 1, LOSS, "filter") for b in batches]
    for k in got:
        torch.testing.assert_close(got[k], separate[0][k] + separate[1][k], rtol=1e-12, atol=0)


def test_filter_taylor_removes_the_least_important_whole_filters_physically():
    from pruners.surgery import out_channels
    from trainables.measure import count_flops

    model, batches = make_model(), make_batches(3)
    model.eval()
    result = prune_filters(model, batches)
    scores = taylor_scores(model, list(RATIOS), iter(batches), 2, LOSS, "filter")
    assert result.masks == {} and "fc2" not in result.kept_channels  # classifier keeps its classes
    for name in ("conv1", "conv2", "fc1"):
        n, kept = out_channels(getattr(model, name)), result.kept_channels[name]
        assert out_channels(getattr(result.model, name)) == len(kept) == n - round(RATIOS[name] * n)
        dropped = [i for i in range(n) if i not in kept]
        score = scores[name]
        assert score[dropped].max() <= score[kept].min(), name  # the least important go
    # Whole filters: the survivors are the baseline's rows, untouched (conv2 minus conv1's inputs).
    k1, k2 = result.kept_channels["conv1"], result.kept_channels["conv2"]
    assert torch.equal(result.model.conv1.weight, model.conv1.weight[k1])
    assert torch.equal(result.model.conv2.weight, model.conv2.weight[k2][:, k1])
    x = batches[0][0]
    n_params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n_params(result.model) < n_params(model)
    assert count_flops(result.model, x[:1]) < count_flops(model, x[:1])
    # The next layer lost the matching inputs and BatchNorm the matching entries.
    assert result.model.conv2.in_channels == len(result.kept_channels["conv1"])
    assert torch.equal(result.model.bn1.running_mean, model.bn1.running_mean[result.kept_channels["conv1"]])


def test_filter_taylor_on_a_resnet_removes_residual_coupled_channels_together():
    from pruners.graph import filter_layers
    from pruners.layers import prunable_layers
    from pruners.surgery import coupled_layers
    from trainables.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet20", 1, 10, 8).eval()
    g = torch.Generator().manual_seed(2)
    batches = [(torch.randn(4, 1, 8, 8, generator=g), torch.randint(0, 10, (4,), generator=g)) for _ in range(2)]
    names = filter_layers(model, prunable_layers(model), batches[0][0][:1])
    groups = coupled_layers(model, names, batches[0][0][:1])
    ratios = {n: 0.25 for n in names}
    result = prune_filters(model, batches, ratios)
    coupled = [ms for ms in groups.values() if len(ms) > 1]
    assert coupled
    scores = taylor_scores(model, names, iter(batches), 2, LOSS, "filter")
    for members in coupled:
        kept = result.kept_channels[members[0]]
        assert all(result.kept_channels[m] == kept for m in members)
        group = sum(scores[m] for m in members)  # ranked by the group's summed importance
        dropped = [i for i in range(len(group)) if i not in kept]
        assert group[dropped].max() <= group[kept].min()
    out = result.model(batches[0][0])
    assert out.shape == (4, 10) and torch.isfinite(out).all()


def test_unknown_granularity_is_rejected():
    model, batches = make_model(), make_batches(2)
    ctx = PruneContext(example_input=batches[0][0], batches=lambda: iter(batches))
    with pytest.raises(ValueError, match="taylor_granularity 'channel'"):
        taylor_mod.taylor(model, RATIOS, {"taylor_batches": 2, "taylor_granularity": "channel"}, ctx)
