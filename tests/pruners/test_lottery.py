"""Lottery tickets: nested masks, geometric per-round counts, exact final sparsity, rewinding."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from pruners import lottery as lottery_mod
from pruners.base import Masks, PruneContext
from pruners.masking import apply_masks
from pruners.registry import get_pruner
from trainables.models import SimpleCNN

RATIOS = {"conv1": 0.2, "conv2": 0.5, "fc1": 0.9, "fc2": 0.3}
ROUNDS = 3


def sgd_steps(model: nn.Module, masks: Masks, steps: int, seed: int) -> None:
    """A few real training steps on random data, masks enforced after each step."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for _ in range(steps):
        x, y = torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        apply_masks(model, masks)


def state_copy(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class Retrainer:
    """Retrain stub: records each call and checks the model arrives rewound and masked."""

    def __init__(self, rewind_state):
        self.rewind_state = rewind_state
        self.calls = 0
        self.arrived_rewound: list[bool] = []

    def __call__(self, model: nn.Module, masks: Masks) -> None:
        self.arrived_rewound.append(rewound_exactly(model, masks, self.rewind_state))
        self.calls += 1
        sgd_steps(model, masks, steps=3, seed=100 + self.calls)


def rewound_exactly(model, masks, rewind_state) -> bool:
    for key, value in model.state_dict().items():
        saved = rewind_state[key]
        if key in masks:
            m = masks[key]
            if not (torch.equal(value[m], saved[m]) and torch.all(value[~m] == 0)):
                return False
        elif not torch.equal(value, saved):
            return False
    return True


@pytest.fixture
def setup():
    """A model saved at init (k=0) and at iteration 2, then trained further."""
    torch.manual_seed(0)
    model = SimpleCNN(1, 10, 8, width=4)
    states = {0: state_copy(model)}
    sgd_steps(model, {}, steps=2, seed=1)
    states[2] = state_copy(model)
    sgd_steps(model, {}, steps=5, seed=2)
    return model, states


T = 100  # the baseline's training steps in these tests: rewind fraction 0.02 is iteration 2


def ctx_for(states, retrain, retrain_from=None) -> PruneContext:
    example = torch.zeros(1, 1, 8, 8)
    return PruneContext(example_input=example, retrain=retrain, retrain_from=retrain_from, baseline_steps=T,
                        rewind_states=states)


def test_schedule_geometric_and_exact_at_end():
    n, s = 1000, 0.9
    counts = lottery_mod.lottery_schedule(n, s, ROUNDS)
    p = 1 - (1 - s) ** (1 / ROUNDS)
    for r, c in enumerate(counts, start=1):
        assert abs(c - (1 - (1 - p) ** r) * n) <= 0.5
    assert counts[-1] == round(s * n)
    assert lottery_mod.lottery_schedule(7, 0.5, 1) == [round(0.5 * 7)]


def test_masks_nested_counts_follow_schedule(setup):
    model, states = setup
    retrain = Retrainer(states[0])
    _, history = lottery_mod.run_rounds(model, RATIOS, ROUNDS, states[0], retrain)
    assert len(history) == ROUNDS
    p = {name: 1 - (1 - s) ** (1 / ROUNDS) for name, s in RATIOS.items()}
    for name, s in RATIOS.items():
        key = f"{name}.weight"
        n = history[0][key].numel()
        pruned = [int((~h[key]).sum()) for h in history]
        assert pruned == lottery_mod.lottery_schedule(n, s, ROUNDS)
        assert pruned[-1] == round(s * n)
        remaining = n
        for r in range(ROUNDS):
            # Masks only shrink.
            if r:
                assert not torch.any(history[r][key] & ~history[r - 1][key])
            # Each round removes about p of what was left (one weight of rounding per round).
            dropped = pruned[r] - (n - remaining)
            assert abs(dropped - p[name] * remaining) <= 1.0
            remaining = n - pruned[r]


def test_masks_shrink_even_if_retrain_revives_pruned_weights(setup):
    # Nesting must come from the pruner, not from retrain happening to keep zeros at zero.
    model, states = setup

    def careless_retrain(m, masks):
        with torch.no_grad():
            for p in m.parameters():
                p.add_(torch.randn_like(p))

    _, history = lottery_mod.run_rounds(model, RATIOS, ROUNDS, states[0], careless_retrain)
    for earlier, later in zip(history, history[1:]):
        assert all(not torch.any(later[k] & ~earlier[k]) for k in later)


def test_rewind_is_bit_exact_and_retrain_called_r_minus_1(setup):
    model, states = setup
    before = state_copy(model)
    retrain = Retrainer(states[0])
    pruned, history = lottery_mod.run_rounds(model, RATIOS, ROUNDS, states[0], retrain)
    assert retrain.calls == ROUNDS - 1
    assert retrain.arrived_rewound == [True] * (ROUNDS - 1)
    # Final model: survivors (and every bias and BatchNorm buffer) equal the saved state.
    assert rewound_exactly(pruned, history[-1], states[0])
    # The input model is untouched.
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_retrain_changes_weights_so_rounds_score_retrained_weights(setup):
    model, states = setup
    seen: list[dict[str, torch.Tensor]] = []

    def retrain(m, masks):
        sgd_steps(m, masks, steps=3, seed=7)
        seen.append(state_copy(m))

    lottery_mod.run_rounds(model, RATIOS, ROUNDS, states[0], retrain)
    assert not torch.equal(seen[0]["fc1.weight"], states[0]["fc1.weight"])


def test_each_round_drops_the_smallest_survivors_of_the_weights_it_was_given(setup):
    # Round 0 scores the trained input model; round r > 0 scores what round r-1's retraining
    # produced, never the dense weights again, the rewind point's, or a random pick.
    model, states = setup
    scored = [state_copy(model)]

    def retrain(m, masks):
        with torch.no_grad():  # new weights in a new order, so a stale score cannot agree
            for p in m.parameters():
                p.normal_(generator=torch.Generator().manual_seed(len(scored)))
        apply_masks(m, masks)
        scored.append(state_copy(m))

    _, history = lottery_mod.run_rounds(model, RATIOS, ROUNDS, states[0], retrain)
    alive = {key: torch.ones_like(mask) for key, mask in history[0].items()}
    for weights, masks in zip(scored, history):
        for key, mask in masks.items():
            dropped_now, kept = alive[key] & ~mask, mask
            magnitude = weights[key].abs()
            assert magnitude[dropped_now].max() <= magnitude[kept].min(), key
        alive = masks


def test_rewind_point_selects_saved_weights(setup):
    model, states = setup
    assert not torch.equal(states[0]["conv1.weight"], states[2]["conv1.weight"])
    pruner = get_pruner("lottery")
    for k in (0, 2):
        retrain = Retrainer(states[k])
        settings = {"lottery_rounds": ROUNDS, "lottery_rewind": k / T, "lottery_retrain": "finetune"}
        result = pruner(model, RATIOS, settings, ctx_for(states, retrain))
        assert rewound_exactly(result.model, result.masks, states[k])
        assert retrain.arrived_rewound == [True] * (ROUNDS - 1)


def test_single_round_needs_no_retrain(setup):
    model, states = setup
    settings = {"lottery_rounds": 1, "lottery_rewind": 0.0, "lottery_retrain": "finetune"}
    result = lottery_mod.lottery(model, RATIOS, settings, ctx_for(states, None))
    for name, s in RATIOS.items():
        mask = result.masks[f"{name}.weight"]
        assert int((~mask).sum()) == round(s * mask.numel())


def test_bad_rewind_point_or_missing_retrain_raises(setup):
    model, states = setup
    ctx = ctx_for(states, Retrainer(states[0]))
    with pytest.raises(ValueError, match=r"iteration 5 of 100.*available: 0, 2"):
        lottery_mod.lottery(model, RATIOS, {"lottery_rounds": 2, "lottery_rewind": 0.05}, ctx)
    with pytest.raises(ValueError, match="retrain"):
        settings = {"lottery_rounds": 2, "lottery_rewind": 0.0, "lottery_retrain": "finetune"}
        lottery_mod.lottery(model, RATIOS, settings, ctx_for(states, None))
    with pytest.raises(ValueError, match="retrain_from"):  # full retraining is the default
        lottery_mod.lottery(model, RATIOS, {"lottery_rounds": 2, "lottery_rewind": 0.0}, ctx)


def test_rewind_fraction_names_an_iteration_of_the_baselines_training():
    assert [lottery_mod.rewind_iteration(f, 1000) for f in (0.0, 0.005, 0.02, 0.05)] == [0, 5, 20, 50]
    assert lottery_mod.rewind_iteration(0.02, 90) == 2  # rounded, not truncated to a step count
    with pytest.raises(ValueError, match="lottery_rewind"):
        lottery_mod.rewind_iteration(1.0, 1000)


class FullRetrainer:
    """retrain_from stub: records the rewind iteration and the state each retraining starts from."""

    def __init__(self):
        self.calls: list[tuple[int, dict]] = []

    def __call__(self, model, masks, k):
        self.calls.append((k, state_copy(model)))
        sgd_steps(model, masks, steps=2, seed=50 + len(self.calls))


def test_full_retraining_runs_from_the_rewind_iteration_after_every_round_the_last_included(setup):
    model, states = setup
    full, short = FullRetrainer(), Retrainer(states[2])
    result = get_pruner("lottery")(model, RATIOS, {"lottery_rounds": ROUNDS, "lottery_rewind": 0.02},
                                   ctx_for(states, short, full))
    assert short.calls == 0  # the trial's short fine-tune is never the retraining
    assert [k for k, _ in full.calls] == [2] * ROUNDS  # every round, the last too, from k = 2
    assert result.trained  # so the trial does not fine-tune it again
    # The final model is the retrained one, not the rewound one.
    assert not rewound_exactly(result.model, result.masks, states[2])


def test_finetune_mode_leaves_the_last_retraining_to_the_trial(setup):
    model, states = setup
    full, short = FullRetrainer(), Retrainer(states[0])
    settings = {"lottery_rounds": ROUNDS, "lottery_rewind": 0.0, "lottery_retrain": "finetune"}
    result = get_pruner("lottery")(model, RATIOS, settings, ctx_for(states, short, full))
    assert full.calls == [] and short.calls == ROUNDS - 1 and not result.trained


def test_reinit_control_keeps_the_tickets_mask_but_not_its_initialization(setup):
    model, states = setup
    runs = {}
    for control in ("none", "reinit"):
        full = FullRetrainer()
        # The trial seeds before pruning, with the seed the baseline's init used (setup: 0), so a
        # control that merely re-ran the initializers would replay the ticket's init.
        torch.manual_seed(0)
        settings = {"lottery_rounds": ROUNDS, "lottery_rewind": 0.0, "lottery_control": control}
        runs[control] = (get_pruner("lottery")(model, RATIOS, settings, ctx_for(states, None, full)), full)
    (ticket, ticket_calls), (control, control_calls) = runs["none"], runs["reinit"]
    assert all(torch.equal(ticket.masks[k], control.masks[k]) for k in ticket.masks)
    # Rounds 1..R-1 are the same; the last retraining starts from the ticket's init only for the ticket.
    for (_, a), (_, b) in zip(ticket_calls.calls[:-1], control_calls.calls[:-1]):
        assert all(torch.equal(a[k], b[k]) for k in a)
    last_ticket, last_control = ticket_calls.calls[-1][1], control_calls.calls[-1][1]
    assert rewound_exactly_state(last_ticket, ticket.masks, states[0])
    for key, mask in control.masks.items():
        assert not torch.equal(last_control[key][mask], last_ticket[key][mask]), key
    for key, mask in control.masks.items():  # the control starts masked too
        assert torch.all(last_control[key][~mask] == 0)
    # A draw from the layers' own initializers: same scale as the original init.
    ratio = last_control["conv1.weight"].std() / states[0]["conv1.weight"].std()
    assert 0.7 < ratio < 1.4


def rewound_exactly_state(state, masks, rewind_state) -> bool:
    model = SimpleCNN(1, 10, 8, width=4)
    model.load_state_dict(state)
    return rewound_exactly(model, masks, rewind_state)
