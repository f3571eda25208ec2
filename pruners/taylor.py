"""First-order Taylor pruning (Molchanov et al.), at two granularities (`taylor_granularity`):

- `weight` (2017): a weight's importance is |dL/dw * w|, summed over N batches; each layer
  loses its sampled ratio of weights; masks.
- `filter` (2019): a filter's importance is (sum over the filter of g * w)^2, summed over N
  batches; the least important filters are removed physically, with the same surgery as FPGM
  (pruners.surgery: BatchNorm, the next layer's inputs, residual-coupled layers), so the model
  gets smaller and faster, not only sparser. Layers tied by a residual addition lose the same
  channels, ranked by the sum of their members' importances (the group's first-order loss
  change). The classifier keeps its outputs (they are the classes).

The importance itself (gradients fresh per batch, accumulated) is pruners.importance.taylor_scores.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from pruners.allocation import filter_groups, layer_channel_drop, layer_masks
from pruners.base import PruneContext, PruneResult
from pruners.graph import nothing_to_prune
from pruners.importance import TAYLOR_TERMS, group_scores, taylor_scores
from pruners.masking import apply_masks
from pruners.registry import register
from pruners.settings import Interval, MethodSettings, setting
from pruners.surgery import remove_group_channels

GRANULARITIES = tuple(TAYLOR_TERMS)  # weight, filter


@dataclass(frozen=True)
class TaylorSettings(MethodSettings):
    taylor_batches: int = setting(4, search=(1, 8), kind="int", accepted=Interval(1, 10_000), counts_batches=True,
                                  help="Taylor: batches to accumulate importance over")
    taylor_granularity: str = setting("weight", search=GRANULARITIES, kind="choice",
                                      help="Taylor: weight (|g*w| per weight, masks) or filter (Molchanov 2019: "
                                           "(sum of g*w over a filter)^2, filters removed physically)")


def _removes(settings: TaylorSettings) -> tuple[bool, bool]:
    filters = settings.taylor_granularity == "filter"
    return filters, not filters  # (structural, masked)


@register("taylor", settings=TaylorSettings, structural=True, masked=True, removes=_removes, order=1)
def taylor(model: nn.Module, ratios: Mapping[str, float], settings: TaylorSettings, ctx: PruneContext) -> PruneResult:
    if ctx.batches is None:
        raise ValueError("taylor needs training batches: PruneContext.batches is None")
    pruned = copy.deepcopy(model)
    notes: list[str] = []
    if settings.taylor_granularity == "filter":
        groups = filter_groups(pruned, ratios, ctx.example_input)
        if not groups:
            return PruneResult(model=pruned, notes=[nothing_to_prune("taylor (filter)")])
        # Every coupled member is scored, so the whole group's loss change is counted.
        members = [m for g in groups for m in g.members]
        scores = taylor_scores(pruned, members, ctx.batches(), settings.taylor_batches, ctx.loss_fn, "filter", notes)
        root_drop = layer_channel_drop(groups, {g.root: group_scores(g, scores) for g in groups}, ratios)
        kept = remove_group_channels(pruned, groups, root_drop, ctx.example_input)
        return PruneResult(model=pruned, kept_channels=kept, notes=notes)
    scores = taylor_scores(pruned, ratios, ctx.batches(), settings.taylor_batches, ctx.loss_fn, "weight", notes)
    masks = layer_masks(scores, ratios)
    apply_masks(pruned, masks)
    return PruneResult(model=pruned, masks=masks, notes=notes)
