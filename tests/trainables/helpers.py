"""Small real data for trainables tests: the digits set, cut down; a 2-epoch SimpleCNN baseline
and the trial settings the trial tests share."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from trainables.baseline import BaselineSpec
from trainables.data import DatasetBundle, Split, load_dataset

SPEC = BaselineSpec("simplecnn", epochs=2, lr=0.05, batch_size=64, seed=0, augment=False, rewind_iters=(0, 5))
CONSTANTS = {"model": "simplecnn", "finetune_epochs": 1, "batch_size": 64, "seed": 0, "augment": False,
             "latency_batch": 1, "finetune_lr": 0.01}


@lru_cache(maxsize=1)
def _digits() -> DatasetBundle:
    return load_dataset("digits", None, Path("/nonexistent-cache-not-used"), 0, 0.15, 0.15)


def small_digits(n_train: int = 400) -> DatasetBundle:
    d = _digits()
    return DatasetBundle(d.name, Split(d.train.x[:n_train], d.train.y[:n_train]), d.val, d.test, d.classes,
                         d.mean, d.std, d.fingerprint + f"-{n_train}")
