"""Property-based tests (Hypothesis) for what defines the masks: exact counts and a clean
threshold (magnitude), and the lottery schedule (geometric per-round fraction, masks only
shrink, exact final sparsity). Example counts are kept small so the fast suite stays fast."""
from __future__ import annotations

from itertools import pairwise

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pruners import lottery as lottery_mod
from pruners.allocation import keep_mask, keep_mask_within
from pruners.base import PruneContext
from pruners.registry import get_pruner

FAST = settings(max_examples=40, deadline=None)
ratios = st.floats(0.0, 0.99)


@st.composite
def matrices(draw, max_side: int = 10) -> torch.Tensor:
    """Small weight matrices; values from a short list of floats, so ties are common."""
    rows, cols = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    values = draw(st.lists(st.sampled_from([-2.0, -0.5, -0.1, 0.0, 0.1, 0.3, 1.0, 3.0]) | st.floats(-4, 4, width=32),
                           min_size=rows * cols, max_size=rows * cols))
    return torch.tensor(values).view(rows, cols)


def one_linear(weight: torch.Tensor) -> nn.Module:
    model = nn.Sequential()
    model.add_module("fc", nn.Linear(weight.shape[1], weight.shape[0]))
    with torch.no_grad():
        model.fc.weight.copy_(weight)
    return model


@FAST
@given(matrices(), ratios)
def test_keep_mask_drops_exactly_the_lowest_scores_ties_by_position(scores, ratio):
    mask = keep_mask(scores, ratio)
    assert int((~mask).sum()) == round(ratio * scores.numel())
    if mask.any() and (~mask).any():
        assert scores[~mask].max() <= scores[mask].min()
    flat, keep = scores.flatten(), mask.flatten()
    for j in (~keep).nonzero().flatten().tolist():  # a tie drops the earlier position first
        assert not keep[:j][flat[:j] == flat[j]].any()


@FAST
@given(matrices(), ratios)
def test_magnitude_zeroes_exactly_the_smallest_magnitudes(weight, ratio):
    model = one_linear(weight)
    result = get_pruner("magnitude")(model, {"fc": ratio}, {}, PruneContext(example_input=torch.zeros(1, weight.shape[1])))
    mask, pruned = result.masks["fc.weight"], result.model.fc.weight.detach()
    assert int((~mask).sum()) == round(ratio * weight.numel())
    if mask.any() and (~mask).any():
        assert weight.abs()[~mask].max() <= weight.abs()[mask].min()
    assert torch.count_nonzero(pruned[~mask]) == 0
    assert torch.equal(pruned[mask], weight[mask])


@FAST
@given(matrices(), ratios, st.integers(0, 2**16))
def test_keep_mask_within_only_shrinks_and_drops_the_lowest_survivors(scores, ratio, seed):
    previous = torch.rand(scores.shape, generator=torch.Generator().manual_seed(seed)) < 0.7
    mask = keep_mask_within(scores, previous, ratio)
    assert not torch.any(mask & ~previous)
    dropped_now = previous & ~mask
    assert int(dropped_now.sum()) == round(ratio * int(previous.sum()))
    if dropped_now.any() and mask.any():
        assert scores[dropped_now].max() <= scores[mask].min()


@settings(max_examples=200, deadline=None)  # pure arithmetic: cheap
@given(st.integers(1, 20_000), ratios, st.integers(1, 8))
def test_lottery_schedule_is_geometric_monotone_and_exact_at_the_end(n, s, rounds):
    counts = lottery_mod.lottery_schedule(n, s, rounds)
    assert len(counts) == rounds
    assert counts[-1] == round(s * n)
    assert counts == sorted(counts) and 0 <= counts[0]  # masks only shrink
    p = 1 - (1 - s) ** (1 / rounds)  # the per-round fraction of the remaining weights
    previous = 0
    for r, count in enumerate(counts, start=1):
        assert abs(count - (1 - (1 - p) ** r) * n) <= 0.5 + 1e-9
        # One round removes p of what the last left, to within one weight of rounding.
        assert abs((count - previous) - p * (n - previous)) <= 1.0 + 1e-9
        previous = count


@FAST
@given(st.integers(1, 5), st.lists(ratios, min_size=2, max_size=2), st.integers(0, 2**16))
def test_lottery_rounds_nest_masks_and_land_on_the_final_sparsity(rounds, layer_ratios, seed):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 9), nn.ReLU(), nn.Linear(9, 4))
    ratios = {"0": layer_ratios[0], "2": layer_ratios[1]}

    def retrain(m, masks):  # new values in a new order every round
        with torch.no_grad():
            for p in m.parameters():
                p.normal_()

    _, history = lottery_mod.run_rounds(model, ratios, rounds, model.state_dict(), retrain)
    for name, s in ratios.items():
        masks = [h[f"{name}.weight"] for h in history]
        n = masks[0].numel()
        assert [int((~m).sum()) for m in masks] == lottery_mod.lottery_schedule(n, s, rounds)
        assert int((~masks[-1]).sum()) == round(s * n)
        assert all(not torch.any(later & ~earlier) for earlier, later in pairwise(masks))
