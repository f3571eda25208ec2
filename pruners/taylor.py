"""First-order Taylor pruning (Molchanov et al.): a weight's importance is |dL/dw * w|, summed
over N batches, each batch's gradient computed afresh. The source article overwrote the
importance with the last batch and never zeroed gradients, so batch k's score carried the
gradients of batches 1..k; here every batch contributes its own |g * w| exactly once."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from itertools import islice
from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from pruners.base import Batch, PruneContext, PruneResult
from pruners.layers import prunable_layers
from pruners.masking import apply_masks, keep_mask
from pruners.registry import register
from pruners.settings import AT_LEAST_1, MethodSettings, setting


@dataclass(frozen=True)
class TaylorSettings(MethodSettings):
    taylor_batches: int = setting(4, search=(1, 8), kind="int", accepted=AT_LEAST_1,
                                  help="Taylor: batches to accumulate importance over")


def taylor_importance(
    model: nn.Module,
    layer_names: Iterable[str],
    batches: Iterable[Batch],
    n_batches: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> dict[str, torch.Tensor]:
    """|dL/dw * w| summed over the first `n_batches` of `batches`, keyed by parameter name
    (`"conv1.weight"`). Leaves the model's weights, buffers, `.grad` and mode as they were."""
    if n_batches < 1:
        raise ValueError(f"taylor_batches must be >= 1, got {n_batches}")
    layers = prunable_layers(model)
    params = {f"{name}.weight": layers[name].weight for name in layer_names}
    importance = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in params.items()}
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
                    importance[name] += (g * p).detach().abs().float()
                seen += 1
    finally:
        model.train(was_training)
    if seen < n_batches:
        raise ValueError(f"taylor_batches={n_batches} but the data yielded only {seen} batches")
    return importance


@register("taylor", settings=TaylorSettings)
def taylor(model: nn.Module, ratios: Mapping[str, float], settings: TaylorSettings, ctx: PruneContext) -> PruneResult:
    if ctx.batches is None:
        raise ValueError("taylor needs training batches: PruneContext.batches is None")
    pruned = copy.deepcopy(model)
    importance = taylor_importance(pruned, list(ratios), ctx.batches(), settings.taylor_batches, ctx.loss_fn)
    masks = {f"{n}.weight": keep_mask(importance[f"{n}.weight"], r) for n, r in ratios.items()}
    apply_masks(pruned, masks)
    return PruneResult(model=pruned, masks=masks)
