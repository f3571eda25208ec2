"""Train, fine-tune (masks enforced, optional distillation), evaluate, recalibrate BatchNorm.

Plain PyTorch on uint8 tensors: batches are sliced, normalized and augmented on the fly, so
nothing is decoded per epoch and the loop costs about what a hand-written one does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from pruners.masking import bind_masks
from trainables.data import Split


class DivergedError(RuntimeError):
    """The loss became NaN or infinite; the trial is recorded as failed with this reason."""


@dataclass(frozen=True)
class Normalizer:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool = False  # random crop (pad 4) + horizontal flip, for 32x32 natural images

    def __call__(self, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        x = x.float().div_(255)
        if self.augment and gen is not None:
            x = _augment(x, gen)
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1).to(x.device), x.flip(3), x)
    padded = F.pad(x, (4, 4, 4, 4))
    dx, dy = torch.randint(0, 9, (2,), generator=gen).tolist()  # one shift per batch: cheap
    return padded[:, :, dy : dy + h, dx : dx + w]


def batches(split: Split, batch_size: int, norm: Normalizer, gen: torch.Generator | None,
            device: torch.device | str = "cpu") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled when `gen` is given (training), in order otherwise (evaluation)."""
    n = len(split)
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        yield norm(split.x[idx].to(device), gen), split.y[idx].to(device)


def total_steps(n_examples: int, batch_size: int, epochs: float) -> int:
    """Optimizer steps of `train`: fractional epochs round to whole steps, at least one. Also
    what a lottery rewind point is checked against before any training starts."""
    return max(1, int(round(epochs * math.ceil(n_examples / batch_size))))


def train(
    model: nn.Module,
    split: Split,
    norm: Normalizer,
    *,
    epochs: float,
    lr: float,
    batch_size: int,
    seed: int,
    masks: Mapping[str, torch.Tensor] | None = None,
    teacher: nn.Module | None = None,
    kd_temperature: float = 4.0,
    kd_alpha: float = 0.5,
    weight_decay: float = 5e-4,
    on_iteration: Callable[[int, nn.Module], None] | None = None,
    device: torch.device | str = "cpu",
) -> float:
    """SGD with momentum and a cosine schedule. With `masks`, pruned weights are re-zeroed after
    every step, so they stay exactly 0 (momentum and weight decay cannot revive them).
    With `teacher`, the loss is (1-a)*CE + a*T^2*KL(student/T || teacher/T) (Hinton et al.).
    `on_iteration(i, model)` is called before step i (i=0 is the untrained model).
    Returns the mean loss of the last epoch."""
    gen = torch.Generator().manual_seed(seed)
    total = total_steps(len(split), batch_size, epochs)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
    reapply_masks = bind_masks(model, masks) if masks else None  # masks cast once, not per step
    if teacher is not None:
        teacher.eval()
    step, last_losses = 0, []
    model.train()
    while step < total:
        last_losses = []
        for x, y in batches(split, batch_size, norm, gen, device):
            if step >= total:
                break
            if on_iteration is not None:
                on_iteration(step, model)
            out = model(x)
            loss = F.cross_entropy(out, y)
            if teacher is not None:
                with torch.no_grad():
                    soft = F.log_softmax(teacher(x) / kd_temperature, dim=1)
                kd = F.kl_div(F.log_softmax(out / kd_temperature, dim=1), soft, log_target=True, reduction="batchmean")
                loss = (1 - kd_alpha) * loss + kd_alpha * kd_temperature**2 * kd
            if not torch.isfinite(loss):
                raise DivergedError(f"loss became {loss.item()} at step {step} (lr={lr})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if reapply_masks is not None:
                reapply_masks()
            last_losses.append(loss.item())
            step += 1
    if on_iteration is not None:
        on_iteration(step, model)
    return sum(last_losses) / max(1, len(last_losses))


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split, norm: Normalizer, batch_size: int = 1024,
             device: torch.device | str = "cpu") -> float:
    model.eval()
    correct = 0
    for x, y in batches(split, batch_size, norm, None, device):
        correct += int((model(x).argmax(1) == y).sum())
    return correct / max(1, len(split))


@torch.no_grad()
def recalibrate_bn(model: nn.Module, split: Split, norm: Normalizer, n_batches: int = 20,
                   batch_size: int = 256, seed: int = 0, device: torch.device | str = "cpu") -> None:
    """Re-estimate BatchNorm running statistics on training data after pruning changed the
    activations (cumulative average over `n_batches`); weights are not touched."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    try:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average
        model.train()
        gen = torch.Generator().manual_seed(seed)
        for i, (x, _) in enumerate(batches(split, batch_size, norm, gen, device)):
            if i >= n_batches:
                break
            model(x)
    finally:
        for m, mom in zip(bns, saved):
            m.momentum = mom
        model.eval()
