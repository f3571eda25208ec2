"""Importance: how a weight or a channel (filter) scores. Higher means more important; the
allocation layer (pruners.allocation) removes the lowest. Nothing here decides how many go or
touches a model's weights: these are functions of tensors, or of a model and data (Taylor).

Score dicts are keyed by layer name, like the per-layer ratios (`"conv1"`).

Per weight (shaped like the weight):
- magnitude: |w|;
- LAMP (Lee et al., ICLR 2021): w^2 over the sum of w'^2 of the layer's weights at least as large;
- Taylor (Molchanov et al. 2017): |dL/dw * w|, summed over batches.
Per filter (one score per output channel):
- FPGM (He et al., CVPR 2019): summed Euclidean distance to the other filters of the layer (the
  smallest are nearest the geometric median, the most replaceable);
- Taylor (Molchanov et al. 2019): (sum over the filter of g*w)^2, summed over batches;
- `group_scores`: a coupled group's channel scored by every channel removed with it.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import islice
from typing import TYPE_CHECKING

import torch
from torch import nn

from pruners.layers import prunable_layers

if TYPE_CHECKING:  # the type only: scoring needs no dependency graph
    from pruners.base import Batch
    from pruners.surgery import ChannelGroup

Score = Callable[[torch.Tensor], torch.Tensor]


def magnitude_scores(weight: torch.Tensor) -> torch.Tensor:
    return weight.detach().abs()


def lamp_scores(weight: torch.Tensor) -> torch.Tensor:
    """LAMP score of every entry: w_u^2 / sum over v >= u of w_v^2, with the layer's weights
    sorted by magnitude ascending (ties by position, so the result is deterministic). Each
    layer's largest weight scores 1, so a global threshold never empties a layer."""
    sq = weight.detach().flatten().double() ** 2
    order = torch.argsort(sq, stable=True)
    sorted_sq = sq[order]
    # Suffix sums: the denominator of entry u is the sum of every entry at or above it.
    suffix = torch.flip(torch.cumsum(torch.flip(sorted_sq, [0]), 0), [0])
    scores_sorted = torch.where(suffix > 0, sorted_sq / suffix.clamp_min(torch.finfo(torch.float64).tiny),
                                torch.zeros_like(sorted_sq))
    scores = torch.empty_like(sq)
    scores[order] = scores_sorted
    return scores.view_as(weight)


def fpgm_scores(weight: torch.Tensor) -> torch.Tensor:
    """score_i = sum_j ||w_i - w_j||_2 over the filters (rows) of one layer: the paper's criterion
    on raw weights, one layer at a time (Torch-Pruning's FPGMImportance is a group variant on |w|)."""
    flat = weight.detach().flatten(1).double()  # float64: near-ties rank the same everywhere
    # ||a-b||^2 = ||a||^2 + ||b||^2 - 2ab: one matrix product, seconds on VGG's 4096x25088 FC
    # layer where the direct pairwise difference (cdist without mm) took minutes. In float64
    # the cancellation costs ~1e-13 relative; the diagonal is set to exactly 0 (i == j), so the
    # sum is over the others.
    sq = flat.pow(2).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (flat @ flat.T)).clamp_min_(0.0)
    d2.fill_diagonal_(0.0)
    return d2.sqrt_().sum(dim=1)


def weight_scores(model: nn.Module, names: Iterable[str], score: Score = magnitude_scores) -> dict[str, torch.Tensor]:
    """`score` of each named layer's weight, by layer name."""
    layers = prunable_layers(model)
    return {name: score(layers[name].weight) for name in names}


def root_scores(model: nn.Module, groups: Sequence[ChannelGroup], score: Score) -> dict[str, torch.Tensor]:
    """One filter score per group from its root layer's weight alone (FPGM's criterion compares
    the filters of one layer); the members follow the root's choice."""
    return weight_scores(model, (g.root for g in groups), score)


def group_scores(group: ChannelGroup, scores: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """One score per root channel: the summed filter score of every channel removed with it
    (through a residual addition the same index, through a concatenation a shifted one)."""
    total = torch.zeros(group.size, dtype=torch.float64)
    for member, mapping in group.members.items():
        roots, channels = (torch.tensor(list(idx), dtype=torch.long) for idx in zip(*mapping.items()))
        total.index_add_(0, roots, scores[member][channels].double())
    return total


def _taylor_per_weight(g: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (g * w).abs().float()


def _taylor_per_filter(g: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    # Molchanov 2019, eq. 8: the squared first-order change of the loss when the whole filter
    # (output channel) is removed; summing g*w BEFORE squaring is what makes it a filter score.
    # float64: the sum cancels, and near-ties must rank the same everywhere.
    return (g.double() * w.double()).flatten(1).sum(dim=1).pow(2)


TAYLOR_TERMS = {"weight": _taylor_per_weight, "filter": _taylor_per_filter}


def taylor_scores(
    model: nn.Module,
    layer_names: Iterable[str],
    batches: Iterable[Batch],
    n_batches: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    granularity: str = "weight",
    notes: list[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Per weight |dL/dw * w| (shaped like the weight) or per filter (sum_filter g*w)^2 (one
    value per output channel), summed over the first `n_batches` of `batches`, by layer name.
    Leaves the model's weights, buffers, `.grad` and mode as they were. `notes` (when given)
    receives a line if the data held fewer batches than asked: the sum is then over those.

    Each batch's gradient is computed afresh: the source article overwrote the importance with
    the last batch and never zeroed gradients, so batch k's score carried batches 1..k."""
    term = TAYLOR_TERMS[granularity]
    if n_batches < 1:
        raise ValueError(f"taylor_batches must be >= 1, got {n_batches}")
    layers = prunable_layers(model)
    params = {name: layers[name].weight for name in layer_names}
    scores: dict[str, torch.Tensor] = {}
    if not params:
        return scores
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
                    scores[name] = scores[name] + t if name in scores else t
                seen += 1
    finally:
        model.train(was_training)
    if seen == 0:
        raise ValueError(f"taylor_batches={n_batches} but the training data yielded no batch")
    if seen < n_batches and notes is not None:
        notes.append(f"taylor_batches={n_batches} but the training data has only {seen} batches: "
                     f"importance summed over {seen}")
    return scores
