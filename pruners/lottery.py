"""Lottery tickets (Frankle & Carbin 2019; late rewinding, Frankle et al. 2020): iterative
magnitude pruning with rewinding. Each of R rounds prunes p = 1-(1-s)^(1/R) of a layer's
remaining weights by |w| of the trained weights (magnitude importance, per-layer allocation
within the survivors, masks), rewinds everything (weights, biases, BatchNorm buffers) to the
state saved at iteration k and re-applies the masks, then retrains.

The rewind point is a fraction of the baseline's training, k = round(f * T) (`lottery_rewind`:
0 is the initialization; the paper's late rewinding uses a few percent). What "retrain" means
is `lottery_retrain`:
- `full` (the paper): after every round, the last included, train for the rest of the
  baseline's own schedule, T - k iterations with its optimizer and learning rates
  (PruneContext.retrain_from). The result is trained; the trial does not fine-tune it again.
- `finetune` (cheap): rounds 1..R-1 retrain with the trial's short fine-tune, and the trial's
  ordinary fine-tune is the last round's retraining.
`lottery_control = "reinit"` is the paper's control: the same final mask, but the survivors
start from a fresh random initialization instead of the rewind point, so comparing the two
shows whether the ticket's initialization matters.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from pruners.allocation import keep_mask_within
from pruners.base import Masks, PruneContext, PruneResult, load_weights
from pruners.importance import magnitude_scores
from pruners.layers import prunable_layers
from pruners.masking import apply_masks
from pruners.registry import register
from pruners.settings import RATIO, Interval, MethodSettings, setting

RETRAIN_MODES = ("full", "finetune")
CONTROLS = ("none", "reinit")
REINIT_SALT = 0x5EED  # the control's init must not replay the baseline's (same seed, same order)


@dataclass(frozen=True)
class LotterySettings(MethodSettings):
    lottery_rounds: int = setting(1, search=(1, 5), kind="int", accepted=Interval(1, 30), help="lottery: pruning rounds R")
    lottery_rewind: float = setting(0.0, search=(0.0, 0.02), kind="choice", accepted=RATIO,
                                    help="lottery: rewind points as fractions of the baseline's training iterations "
                                         "(0 = the initialization; late rewinding e.g. 0.005, 0.02, 0.05)")
    lottery_retrain: str = setting("full", search=("full",), kind="choice", accepted=RETRAIN_MODES,
                                   help="lottery: full (the paper: after every round, the rest of the baseline's "
                                        "schedule from the rewind point) or finetune (the trial's short fine-tune)")
    lottery_control: str = setting("none", search=("none",), kind="choice", accepted=CONTROLS,
                                   help="lottery: none (the ticket) or reinit (the paper's control: same mask, "
                                        "random re-initialization)")

    @classmethod
    def baseline_checkpoints(cls, searched: Mapping[str, Any], baseline_steps: int = 0) -> tuple[int, ...]:
        return tuple(sorted({rewind_iteration(f, baseline_steps) for f in searched["lottery_rewind"]}))

    @classmethod
    def check_against_baseline(cls, searched: Mapping[str, Any], baseline_steps: int) -> tuple[str, str] | None:
        # Fractions always fall inside a trained baseline; a checkpoint (0 steps) has only its
        # rewind checkpoint, iteration 0.
        if baseline_steps == 0 and any(f > 0 for f in searched["lottery_rewind"]):
            return "lottery_rewind", "rewind points inside the baseline's training"
        return None


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


def rewind_iteration(fraction: float, total_steps: int) -> int:
    """The baseline iteration a rewind fraction names: round(fraction * T), inside [0, T)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"lottery_rewind {fraction} outside [0, 1)")
    return min(int(round(fraction * total_steps)), max(0, total_steps - 1))


def reinitialized_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A fresh draw from each layer's own initializer (BatchNorm reset too), deterministic for
    the trial's seed and different from the baseline's initialization."""
    fresh = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed((torch.initial_seed() + REINIT_SALT) % 2**63)
        for module in fresh.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return {k: v.detach().clone() for k, v in fresh.state_dict().items()}


def run_rounds(
    model: nn.Module,
    ratios: Mapping[str, float],
    rounds: int,
    rewind_state: Mapping[str, torch.Tensor],
    retrain: Callable[[nn.Module, Masks], None] | None,
    retrain_last: bool = False,
    final_state: Mapping[str, torch.Tensor] | None = None,
) -> tuple[nn.Module, list[Masks]]:
    """Prune a copy of `model` over `rounds` rounds; return the rewound, masked copy (retrained
    after the last round too when `retrain_last`) and the masks after every round (the last is
    the final mask). `final_state`, if given, replaces the rewind point after the last round
    (the random-reinit control)."""
    if (rounds > 1 or retrain_last) and retrain is None:
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
            new_masks[f"{name}.weight"] = keep_mask_within(magnitude_scores(layers[name].weight), previous, ratio)
        masks = new_masks
        history.append(masks)
        last = r == rounds - 1
        # The whole state dict, so BatchNorm running statistics rewind along with the weights.
        load_weights(pruned, final_state if last and final_state is not None else rewind_state)
        apply_masks(pruned, masks)
        if (not last or retrain_last) and retrain is not None:  # checked above
            retrain(pruned, masks)
    return pruned, history


@register("lottery", settings=LotterySettings, order=3)
def lottery(model: nn.Module, ratios: Mapping[str, float], settings: LotterySettings, ctx: PruneContext) -> PruneResult:
    rounds, mode, control = settings.lottery_rounds, settings.lottery_retrain, settings.lottery_control
    k = rewind_iteration(settings.lottery_rewind, ctx.baseline_steps)
    if k not in ctx.rewind_states:
        available = ", ".join(str(key) for key in sorted(ctx.rewind_states)) or "none"
        raise ValueError(f"lottery_rewind names iteration {k} of {ctx.baseline_steps}, which has no saved state; "
                         f"available: {available}")
    if mode == "full":
        if ctx.retrain_from is None:
            raise ValueError("lottery_retrain=full needs PruneContext.retrain_from")
        retrain_from = ctx.retrain_from

        def retrain(m: nn.Module, masks: Masks) -> None:
            retrain_from(m, masks, k)
    else:
        retrain = ctx.retrain
    final_state = reinitialized_state(model) if control == "reinit" else None
    pruned, history = run_rounds(model, ratios, rounds, ctx.rewind_states[k], retrain,
                                 retrain_last=mode == "full", final_state=final_state)
    return PruneResult(model=pruned, masks=history[-1], trained=mode == "full")
