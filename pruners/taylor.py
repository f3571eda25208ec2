"""First-order Taylor pruning (Molchanov et al.), at two granularities (`taylor_granularity`):

- `weight` (2017): a weight's importance is |dL/dw * w|, summed over N batches; masks.
- `filter` (2019): a filter's importance is (sum over the filter of g * w)^2, summed over N
  batches; the least important filters are removed physically, with the same surgery as FPGM
  (pruners.surgery: BatchNorm, the next layer's inputs, residual-coupled layers), so the model
  gets smaller and faster, not only sparser. Layers tied by a residual addition lose the same
  channels, ranked by the sum of their members' importances (the group's first-order loss
  change). The classifier keeps its outputs (they are the classes).

Each batch's gradient is computed afresh. The source article overwrote the importance with the
last batch and never zeroed gradients, so batch k's score carried the gradients of batches
1..k; here every batch contributes its own term exactly once."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from itertools import islice
from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from pruners.base import Batch, PruneContext, PruneResult
from pruners.graph import filter_layers, nothing_to_prune
from pruners.layers import prunable_layers
from pruners.masking import apply_masks, keep_mask
from pruners.registry import register
from pruners.settings import Interval, MethodSettings, setting
from pruners.surgery import ChannelGroup, channel_groups, complement, out_channels, remove_channels, spread

GRANULARITIES = ("weight", "filter")


@dataclass(frozen=True)
class TaylorSettings(MethodSettings):
    taylor_batches: int = setting(4, search=(1, 8), kind="int", accepted=Interval(1, 10_000), counts_batches=True,
                                  help="Taylor: batches to accumulate importance over")
    taylor_granularity: str = setting("weight", search=GRANULARITIES, kind="choice",
                                      help="Taylor: weight (|g*w| per weight, masks) or filter (Molchanov 2019: "
                                           "(sum of g*w over a filter)^2, filters removed physically)")


def _per_weight(g: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (g * w).abs().float()


def _per_filter(g: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    # Molchanov 2019, eq. 8: the squared first-order change of the loss when the whole filter
    # (output channel) is removed; summing g*w BEFORE squaring is what makes it a filter score.
    # float64: the sum cancels, and near-ties must rank the same everywhere.
    return (g.double() * w.double()).flatten(1).sum(dim=1).pow(2)


def taylor_importance(
    model: nn.Module,
    layer_names: Iterable[str],
    batches: Iterable[Batch],
    n_batches: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    granularity: str = "weight",
    notes: list[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Per weight |dL/dw * w| (shaped like the weight) or per filter (sum_filter g*w)^2 (one
    value per output channel), summed over the first `n_batches` of `batches`, keyed by
    parameter name (`"conv1.weight"`). Leaves the model's weights, buffers, `.grad` and mode
    as they were. `notes` (when given) receives a line if the data held fewer batches than
    asked: the sum is then over the batches there were."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"taylor_granularity {granularity!r}; expected one of {', '.join(GRANULARITIES)}")
    term = _per_weight if granularity == "weight" else _per_filter
    if n_batches < 1:
        raise ValueError(f"taylor_batches must be >= 1, got {n_batches}")
    layers = prunable_layers(model)
    params = {f"{name}.weight": layers[name].weight for name in layer_names}
    importance: dict[str, torch.Tensor] = {}
    if not params:
        return importance
    device = next(iter(params.values())).device
    was_training = model.training
    # Eval mode: in train mode every forward would update BatchNorm running statistics, so
    # scoring would change the model being pruned (and make scores depend on batch makeup).
    model.eval()
    seen = 0
    try:
        with torch.enable_grad():
            for inputs, targets in islice(batches, n_batches):
                loss = loss_fn(model(inputs.to(device)), targets.to(device))
                # autograd.grad returns this batch's gradient alone -- the equivalent of zeroing
                # before each batch -- and never touches `.grad`, so stale grads cannot leak in.
                grads = torch.autograd.grad(loss, list(params.values()))
                for (name, p), g in zip(params.items(), grads):
                    t = term(g.detach(), p.detach())
                    importance[name] = importance[name] + t if name in importance else t
                seen += 1
    finally:
        model.train(was_training)
    if seen == 0:
        raise ValueError(f"taylor_batches={n_batches} but the training data yielded no batch")
    if seen < n_batches and notes is not None:
        notes.append(f"taylor_batches={n_batches} but the training data has only {seen} batches: "
                     f"importance summed over {seen}")
    return importance


def group_scores(group: ChannelGroup, importance: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """One score per root channel: the summed importance of every channel removed with it
    (through a residual addition the same index, through a concatenation a shifted one)."""
    score = torch.zeros(group.size, dtype=torch.float64)
    for member, mapping in group.members.items():
        roots, channels = (torch.tensor(list(idx), dtype=torch.long) for idx in zip(*mapping.items()))
        score.index_add_(0, roots, importance[f"{member}.weight"][channels].double())
    return score


def taylor_filter_drop(
    model: nn.Module, ratios: Mapping[str, float], importance: Mapping[str, torch.Tensor], example: torch.Tensor
) -> dict[str, list[int]]:
    """Per filter layer in `ratios` (classifier excluded), the round(ratio * n) least important
    output channels (ties to the lower index, at least one kept); coupled layers share the
    drop of their group, ranked by the group's summed importance at the root's ratio."""
    groups = channel_groups(model, filter_layers(model, ratios, example), example)
    root_drop = {}
    for g in groups:
        n_drop = min(int(round(float(ratios[g.root]) * g.size)), g.size - 1)
        root_drop[g.root] = sorted(torch.argsort(group_scores(g, importance), stable=True)[:n_drop].tolist())
    return spread(groups, root_drop)


def _removes(settings: TaylorSettings) -> tuple[bool, bool]:
    filters = settings.taylor_granularity == "filter"
    return filters, not filters  # (structural, masked)


@register("taylor", settings=TaylorSettings, structural=True, masked=True, removes=_removes)
def taylor(model: nn.Module, ratios: Mapping[str, float], settings: TaylorSettings, ctx: PruneContext) -> PruneResult:
    if ctx.batches is None:
        raise ValueError("taylor needs training batches: PruneContext.batches is None")
    granularity = settings.taylor_granularity
    if granularity not in GRANULARITIES:
        raise ValueError(f"taylor_granularity {granularity!r}; expected one of {', '.join(GRANULARITIES)}")
    pruned = copy.deepcopy(model)
    n_batches = settings.taylor_batches
    notes: list[str] = []
    if granularity == "filter":
        layers = prunable_layers(pruned)
        # Every coupled member is scored, so the whole group's loss change is counted.
        groups = channel_groups(pruned, filter_layers(pruned, ratios, ctx.example_input), ctx.example_input)
        if not groups:
            return PruneResult(model=pruned, notes=[nothing_to_prune("taylor (filter)")])
        scored = [m for g in groups for m in g.members]
        importance = taylor_importance(pruned, scored, ctx.batches(), n_batches, ctx.loss_fn, "filter", notes)
        drop = taylor_filter_drop(pruned, ratios, importance, ctx.example_input)
        kept = {n: complement(d, out_channels(layers[n])) for n, d in drop.items()}
        remove_channels(pruned, drop, ctx.example_input)
        return PruneResult(model=pruned, kept_channels=kept, notes=notes)
    importance = taylor_importance(pruned, list(ratios), ctx.batches(), n_batches, ctx.loss_fn, notes=notes)
    masks = {f"{n}.weight": keep_mask(importance[f"{n}.weight"], r) for n, r in ratios.items()}
    apply_masks(pruned, masks)
    return PruneResult(model=pruned, masks=masks, notes=notes)
