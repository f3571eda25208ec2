"""Lottery tickets (Frankle & Carbin): iterative magnitude pruning with rewinding. Each of R
rounds prunes p = 1-(1-s)^(1/R) of a layer's remaining weights by |w| of the trained weights,
rewinds everything (weights, biases, BatchNorm buffers) to the state saved at iteration k and
re-applies the masks; rounds 1..R-1 then retrain. The last round is not retrained here: the
trial's ordinary fine-tune, with masks enforced, is that round's retraining."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import nn

from pruners.base import Masks, PruneContext, PruneResult
from pruners.layers import prunable_layers
from pruners.masking import apply_masks, keep_mask_within
from pruners.registry import register
from pruners.settings import AT_LEAST_1, NON_NEGATIVE, MethodSettings, setting


@dataclass(frozen=True)
class LotterySettings(MethodSettings):
    lottery_rounds: int = setting(1, search=(1, 5), kind="int", accepted=AT_LEAST_1, help="lottery: pruning rounds R")
    lottery_rewind_iter: int = setting(0, search=(0, 20), kind="choice", accepted=NON_NEGATIVE,
                                       help="lottery: rewind points (training iteration; 0 = init)")

    @classmethod
    def check_against_baseline(cls, searched: Mapping[str, Any], baseline_steps: int) -> tuple[str, str] | None:
        if any(k > baseline_steps for k in searched["lottery_rewind_iter"]):
            return "lottery_rewind_iter", f"rewind points within the baseline's {baseline_steps} training iterations"
        return None

    @classmethod
    def baseline_checkpoints(cls, searched: Mapping[str, Any]) -> tuple[int, ...]:
        return tuple(searched["lottery_rewind_iter"])


def lottery_schedule(n: int, s: float, rounds: int) -> list[int]:
    """Total pruned count of an n-weight layer after each round. Each round is rounded from
    the exact geometric curve (not from the previous rounded count) so errors do not pile up,
    and the last round is round(s * n) exactly."""
    if not 0.0 <= s < 1.0:
        raise ValueError(f"sparsity {s} outside [0, 1)")
    if rounds < 1:
        raise ValueError(f"lottery_rounds must be >= 1, got {rounds}")
    # 1 - (1-p)^r with p = 1-(1-s)^(1/R) is 1 - (1-s)^(r/R).
    counts = [int(round((1.0 - (1.0 - s) ** (r / rounds)) * n)) for r in range(1, rounds)]
    return counts + [int(round(s * n))]


def run_rounds(
    model: nn.Module,
    ratios: Mapping[str, float],
    rounds: int,
    rewind_state: Mapping[str, torch.Tensor],
    retrain: Callable[[nn.Module, Masks], None] | None,
) -> tuple[nn.Module, list[Masks]]:
    """Prune a copy of `model` over `rounds` rounds; return the rewound, masked copy and the
    masks after every round (the last is the final mask)."""
    if rounds > 1 and retrain is None:
        raise ValueError(f"lottery_rounds={rounds} needs PruneContext.retrain between rounds")
    pruned = copy.deepcopy(model)
    layers = prunable_layers(pruned)
    masks: Masks = {}
    schedules: dict[str, list[int]] = {}
    for name, s in ratios.items():
        masks[f"{name}.weight"] = torch.ones_like(layers[name].weight, dtype=torch.bool)
        schedules[name] = lottery_schedule(layers[name].weight.numel(), s, rounds)
    history: list[Masks] = []
    for r in range(rounds):
        new_masks: Masks = {}
        for name in ratios:
            previous = masks[f"{name}.weight"]
            survivors = int(previous.sum())
            # The fraction of survivors that lands the running total exactly on the schedule.
            n_drop = schedules[name][r] - (previous.numel() - survivors)
            ratio = n_drop / survivors if survivors else 0.0
            scores = layers[name].weight.abs()
            new_masks[f"{name}.weight"] = keep_mask_within(scores, previous, ratio)
        masks = new_masks
        history.append(masks)
        # The whole state dict, so BatchNorm running statistics rewind along with the weights.
        pruned.load_state_dict(rewind_state)
        apply_masks(pruned, masks)
        if r < rounds - 1 and retrain is not None:  # not None whenever rounds > 1 (checked above)
            retrain(pruned, masks)
    return pruned, history


@register("lottery", settings=LotterySettings)
def lottery(model: nn.Module, ratios: Mapping[str, float], settings: LotterySettings, ctx: PruneContext) -> PruneResult:
    rounds, k = settings.lottery_rounds, settings.lottery_rewind_iter
    if k not in ctx.rewind_states:
        available = ", ".join(str(key) for key in sorted(ctx.rewind_states)) or "none"
        raise ValueError(f"lottery_rewind_iter={k} has no saved state; available: {available}")
    pruned, history = run_rounds(model, ratios, rounds, ctx.rewind_states[k], ctx.retrain)
    return PruneResult(model=pruned, masks=history[-1])
