"""The dense baseline: trained once per (model, data, recipe, seed), cached under a
content-addressed key, reused by every later search and every trial.

Besides the trained weights it keeps the weights at the lottery ticket's rewind points
(iteration k of training; k = 0 is the initialization), so a rewind is exact.

With the user's checkpoint (`--checkpoint`) nothing is trained: the dense model is the checkpoint,
its val/test accuracy is measured on the search's splits, and the cache key is the file's content
hash (plus the model and the data). Lottery rewinds to `--rewind-checkpoint` (iteration 0) only.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from pruners.base import load_weights
from trainables.checkpoint import check_fits, file_sha256
from trainables.data import DataError, DatasetBundle, one_line
from trainables.loops import Normalizer, evaluate, train
from trainables.measure import TEST_ACC, VAL_ACC
from trainables.models import build_model
from trainables.progress import duration, time_left

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BaselineSpec:
    model: str
    epochs: float
    lr: float
    batch_size: int
    seed: int
    augment: bool
    rewind_iters: tuple[int, ...] = (0,)
    # Part of the cache key, like every field: a baseline trained with another schedule (or
    # before this field existed) is never reused for this recipe.
    schedule: str = "cosine"
    checkpoint: str = ""  # path of the user's trained weights; its content hash is what keys the cache
    rewind_checkpoint: str = ""

    def key(self, data: DatasetBundle) -> str:
        if self.checkpoint:  # the recipe fields trained nothing: the file's content is the baseline
            spec = {"model": self.model, "checkpoint": file_sha256(Path(self.checkpoint)),
                    "rewind": file_sha256(Path(self.rewind_checkpoint)) if self.rewind_checkpoint else ""}
        else:  # without the (empty) checkpoint fields, so keys of earlier caches stay valid
            spec = {k: v for k, v in asdict(self).items() if k not in ("checkpoint", "rewind_checkpoint")}
        blob = json.dumps({"spec": spec, "data": data.fingerprint}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Baseline:
    key: str
    state: dict[str, torch.Tensor]
    rewind_states: dict[int, dict[str, torch.Tensor]]
    metrics: dict[str, float]
    spec: BaselineSpec  # the recipe it was trained with (a checkpoint: the recipe it stands in for)
    cached: bool = False

    def build(self, model_name: str, data: DatasetBundle) -> nn.Module:
        model = build_model(model_name, data.in_channels, data.num_classes, data.image_size)
        load_weights(model, self.state)
        return model


def normalizer(data: DatasetBundle, augment: bool) -> Normalizer:
    return Normalizer(data.mean, data.std, augment)


def get_baseline(spec: BaselineSpec, data: DatasetBundle, cache_dir: Path) -> Baseline:
    key = spec.key(data)
    path = cache_dir / "baselines" / f"{key}.pt"
    if path.exists():
        blob = _read_cache(path, spec)
        logger.info(f"baseline {key}: reusing cached dense model from {path} (no retraining); "
                   f"val_acc={blob['metrics']['val_acc']:.4f} test_acc={blob['metrics']['test_acc']:.4f}")
        return Baseline(key, blob["state"], blob["rewind_states"], blob["metrics"], cached=True, spec=spec)
    if spec.checkpoint:
        baseline = _from_checkpoint(spec, data, key)
    else:
        logger.info(f"baseline {key}: training dense {spec.model} for {spec.epochs} epochs, {spec.schedule} schedule, "
                   f"augmentation {'on' if spec.augment else 'off'} (cached afterwards at {path})")
        baseline = _train_baseline(spec, data, key, path.with_suffix(".partial.pt"))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"state": baseline.state, "rewind_states": baseline.rewind_states,
                "metrics": baseline.metrics, "spec": asdict(baseline.spec)}, tmp)
    os.replace(tmp, path)  # atomic: a crash mid-write never leaves a corrupt cache
    path.with_suffix(".partial.pt").unlink(missing_ok=True)
    return baseline


CACHE_KEYS = ("state", "rewind_states", "metrics", "spec")


def _read_cache(path: Path, spec: BaselineSpec) -> dict:
    """The cached blob, complete; else one DataError naming the file to delete (it loads with
    weights_only, so nothing in it runs)."""
    try:
        blob = torch.load(path, weights_only=True)
        missing = [k for k in CACHE_KEYS if k not in blob]
        missing += [f"metrics.{k}" for k in (VAL_ACC, TEST_ACC) if k not in blob.get("metrics", {})]
        missing += [f"rewind_states[{k}]" for k in spec.rewind_iters if k not in blob.get("rewind_states", {})]
        if missing:
            raise KeyError(f"missing {', '.join(missing)}")
    except Exception as exc:  # noqa: BLE001 - unreadable or incomplete: the same to the user
        raise DataError(f"corrupt baseline cache {path} ({one_line(exc)}); delete it to retrain") from None
    return blob


def _read_partial(partial: Path) -> dict | None:
    """A training saved by an earlier, interrupted run of this very recipe (the file is named by
    the recipe's key), or None; an unreadable one is set aside and training starts over."""
    if not partial.exists():
        return None
    try:
        return torch.load(partial, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a half-written or foreign file: start over, say so
        logger.warning(f"baseline: ignoring unreadable partial training {partial} ({one_line(exc)})")
        return None


def _from_checkpoint(spec: BaselineSpec, data: DatasetBundle, key: str) -> Baseline:
    """The user's trained model as the baseline, its accuracy measured here (a checkpoint
    evaluated with the wrong preprocessing looks broken: the log line shows it before any trial)."""
    model = build_model(spec.model, data.in_channels, data.num_classes, data.image_size)
    state = check_fits(model, Path(spec.checkpoint))
    rewind = {0: check_fits(model, Path(spec.rewind_checkpoint), "--rewind-checkpoint")} if spec.rewind_checkpoint else {}
    load_weights(model, state)
    plain = normalizer(data, False)
    metrics = {VAL_ACC: evaluate(model, data.val, plain), TEST_ACC: evaluate(model, data.test, plain), "train_s": 0.0}
    logger.info(f"baseline {key}: dense model from checkpoint {spec.checkpoint}: measured val_acc={metrics[VAL_ACC]:.4f} "
               f"test_acc={metrics[TEST_ACC]:.4f} (no training; if this looks low, check --normalize and --image-size)")
    return Baseline(key, {k: v.detach().clone() for k, v in state.items()}, rewind, metrics, cached=False,
                    spec=spec)


def _train_baseline(spec: BaselineSpec, data: DatasetBundle, key: str, partial: Path) -> Baseline:
    """Trains the recipe; after every epoch the training so far is saved at `partial`, and a
    training that finds one there continues from it (the same weights as an uninterrupted run)."""
    torch.manual_seed(spec.seed)
    model = build_model(spec.model, data.in_channels, data.num_classes, data.image_size)
    rewind: dict[int, dict[str, torch.Tensor]] = {}
    resume = _read_partial(partial)
    before_s = 0.0  # training time of the runs this one continues
    if resume is not None:
        rewind.update(resume["rewind"])
        before_s = float(resume["train_s"])
        logger.info(f"baseline {key}: continuing from epoch {resume['train']['epoch']} (saved at {partial})")
    first_epoch = resume["train"]["epoch"] if resume is not None else 0

    def keep_rewind_point(step: int, m: nn.Module) -> None:
        if step in spec.rewind_iters and step not in rewind:
            rewind[step] = {k: v.detach().clone() for k, v in m.state_dict().items()}

    start = time.perf_counter()
    plain = normalizer(data, False)

    def report_epoch(epoch: int, epochs: int, loss: float) -> None:
        # Validation accuracy each epoch: a long training shows it is learning, not only alive.
        elapsed = time.perf_counter() - start
        logger.info(f"baseline {key}: epoch {epoch}/{epochs} loss {loss:.4f} val_acc {evaluate(model, data.val, plain):.4f} "
                   f"({duration(before_s + elapsed)}{time_left(elapsed, epoch - first_epoch, epochs - first_epoch)})")

    def save_partial(state: dict) -> None:
        tmp = partial.with_suffix(f".tmp{os.getpid()}")
        partial.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"train": state, "rewind": rewind, "train_s": before_s + time.perf_counter() - start}, tmp)
        os.replace(tmp, partial)

    train(model, data.train, normalizer(data, spec.augment), epochs=spec.epochs, lr=spec.lr,
          batch_size=spec.batch_size, seed=spec.seed, on_iteration=keep_rewind_point, on_epoch=report_epoch,
          schedule=spec.schedule, resume=resume["train"] if resume is not None else None, on_checkpoint=save_partial)
    missing = set(spec.rewind_iters) - set(rewind)
    if missing:
        raise ValueError(f"rewind iterations {sorted(missing)} are past the baseline's training length")
    metrics = {VAL_ACC: evaluate(model, data.val, plain), TEST_ACC: evaluate(model, data.test, plain),
               "train_s": before_s + time.perf_counter() - start}
    logger.info(f"baseline {key}: val_acc={metrics['val_acc']:.4f} test_acc={metrics['test_acc']:.4f} "
               f"in {metrics['train_s']:.0f}s")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return Baseline(key, state, rewind, metrics, cached=False, spec=spec)
