"""Train, fine-tune (masks enforced, optional distillation), evaluate, recalibrate BatchNorm.

Plain PyTorch on uint8 tensors: batches are sliced, normalized and augmented on the fly, so
nothing is decoded per epoch and the loop costs about what a hand-written one does.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pruners.base import Distillation
from pruners.masking import bind_masks
from pruners.quantize import fake_quantize
from trainables.data import Split

PAD = 4  # pixels of reflect padding before the random crop
SCHEDULES = ("cosine", "onecycle")


class DivergedError(RuntimeError):
    """The loss became NaN or infinite; the trial is recorded as failed with this reason."""


@dataclass(frozen=True)
class Normalizer:
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: bool = False  # random crop (reflect pad 4) + horizontal flip, for natural images

    def __call__(self, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        x = x.float().div_(255)
        if self.augment and gen is not None:
            x = _augment(x, gen)
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x - mean) / std


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per image: a horizontal flip with probability 1/2 and a random 32x32 crop of the image
    reflect-padded by 4 (the standard CIFAR recipe), by one gather over the whole batch."""
    n, c, h, w = x.shape
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1).to(x.device), x.flip(3), x)
    padded = F.pad(x, (PAD, PAD, PAD, PAD), mode="reflect")
    dy, dx = torch.randint(0, 2 * PAD + 1, (2, n), generator=gen).to(x.device)
    rows = (dy.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (dx.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    chan = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[batch, chan, rows, cols]


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


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, targets: torch.Tensor,
                      temperature: float, alpha: float) -> torch.Tensor:
    """Hinton et al.: (1-a)*CE(student, y) + a*T^2*KL(softmax(teacher/T) || softmax(student/T)),
    averaged over the batch. Both softmaxes are tempered; T^2 keeps the soft term's gradient
    (which scales as 1/T^2) on the same scale as the hard term's at any temperature."""
    soft_targets = F.log_softmax(teacher / temperature, dim=1)
    kd = F.kl_div(F.log_softmax(student / temperature, dim=1), soft_targets, log_target=True, reduction="batchmean")
    return (1 - alpha) * F.cross_entropy(student, targets) + alpha * temperature**2 * kd


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
    distill: Distillation | None = None,
    weight_decay: float = 5e-4,
    on_iteration: Callable[[int, nn.Module], None] | None = None,
    on_epoch: Callable[[int, int, float], None] | None = None,
    device: torch.device | str = "cpu",
    schedule: str = "cosine",
    start_step: int = 0,
    fake_quant: Sequence[str] = (),
    resume: Mapping[str, Any] | None = None,
    on_checkpoint: Callable[[dict[str, Any]], None] | None = None,
) -> float:
    """SGD with Nesterov momentum and a cosine schedule, or with `schedule="onecycle"` a
    one-cycle schedule peaking at `lr` (warm-up then cosine annealing; trains a dense model well
    in few epochs). With `masks`, pruned weights are re-zeroed after
    every step, so they stay exactly 0 (momentum and weight decay cannot revive them).
    With `teacher` and `distill` (T, a), the loss is (1-a)*CE + a*T^2*KL(student/T || teacher/T)
    (Hinton et al.).
    `on_iteration(i, model)` is called before step i (i=0 is the untrained model);
    `on_epoch(epoch, epochs, mean_loss)` after each epoch (1-based; a fractional last epoch counts).
    `start_step=k` runs only steps k..T-1 of this schedule, at the learning rates the whole run
    would have had there (lottery's retraining from rewind point k, Frankle et al.).
    `fake_quant` names weights to fake-quantize to int8 in every forward (quantization-aware
    training: the gradient at the quantized weights updates the float ones).
    `on_checkpoint(state)` after each epoch gets what `resume=state` continues from (weights,
    optimizer, step, both random generators): a resumed run ends with the same weights as one
    never interrupted (a long baseline survives the end of a session).
    Returns the mean loss of the last epoch."""
    gen = torch.Generator().manual_seed(seed)
    total = total_steps(len(split), batch_size, epochs)
    first_epoch = 0
    if resume is not None:
        start_step, first_epoch = int(resume["step"]), int(resume["epoch"])
    if not 0 <= start_step < total:
        raise ValueError(f"start_step {start_step} outside the schedule's {total} steps")
    steps_per_epoch = math.ceil(len(split) / batch_size)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay, nesterov=True)
    sched = _scheduler(opt, schedule, lr, total)
    with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": intended here
        warnings.simplefilter("ignore", UserWarning)
        for _ in range(start_step):
            sched.step()
    if resume is not None:  # after the schedule's fast-forward, which would otherwise rescale the loaded lr
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        gen.set_state(resume["generator"])
        torch.set_rng_state(resume["torch_rng"])
    reapply_masks = bind_masks(model, masks) if masks else None  # masks cast once, not per step
    named = dict(model.named_parameters())
    quantized = [named[n] for n in fake_quant]
    if (teacher is None) != (distill is None):
        raise ValueError("distillation needs both a teacher and its settings (pruners.base.Distillation)")
    if teacher is not None:
        teacher.eval()
    step, last_losses, epoch = start_step, [], first_epoch
    epochs = first_epoch + math.ceil((total - start_step) / steps_per_epoch)
    while step < total:
        model.train()  # again each epoch: on_epoch may have evaluated the model
        last_losses = []
        for x, y in batches(split, batch_size, norm, gen, device):
            if step >= total:
                break
            if on_iteration is not None:
                on_iteration(step, model)
            floats = [p.detach().clone() for p in quantized]
            with torch.no_grad():
                for p in quantized:
                    p.copy_(fake_quantize(p))
            out = model(x)
            if teacher is None or distill is None:
                loss = F.cross_entropy(out, y)
            else:
                with torch.no_grad():
                    teacher_out = teacher(x)
                loss = distillation_loss(out, teacher_out, y, distill.temperature, distill.alpha)
            if not torch.isfinite(loss):
                raise DivergedError(f"loss became {loss.item()} at step {step} (lr={lr})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():  # straight-through: the step applies to the float weights
                for p, f in zip(quantized, floats):
                    p.copy_(f)
            opt.step()
            sched.step()
            if reapply_masks is not None:
                reapply_masks()
            last_losses.append(loss.item())
            step += 1
        epoch += 1
        if on_epoch is not None:
            on_epoch(epoch, epochs, sum(last_losses) / max(1, len(last_losses)))
        if on_checkpoint is not None and step < total:
            on_checkpoint({"step": step, "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                           "generator": gen.get_state(), "torch_rng": torch.get_rng_state()})
    if on_iteration is not None:
        on_iteration(step, model)
    return sum(last_losses) / max(1, len(last_losses))


def _scheduler(opt: torch.optim.Optimizer, schedule: str, lr: float, total: int):
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
    if schedule == "onecycle":
        # Warm up over the first 15% of steps from lr/25, then anneal to lr/1e4 (momentum cycles
        # inversely, 0.95 -> 0.85 -> 0.95): Smith & Topin's super-convergence recipe.
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.15)
    raise ValueError(f"schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")


@torch.inference_mode()
def evaluate(model: nn.Module, split: Split, norm: Normalizer, batch_size: int = 1024,
             device: torch.device | str = "cpu", on_batch: Callable[[int], None] | None = None) -> float:
    """Accuracy; `on_batch(images_done)` after each batch (progress on large test sets)."""
    model.eval()
    correct = done = 0
    for x, y in batches(split, batch_size, norm, None, device):
        correct += int((model(x).argmax(1) == y).sum())
        done += len(y)
        if on_batch is not None:
            on_batch(done)
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
