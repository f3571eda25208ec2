"""Small real data for trainables tests: the digits set, cut down."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from trainables.data import DatasetBundle, Split, load_dataset


@lru_cache(maxsize=1)
def _digits() -> DatasetBundle:
    return load_dataset("digits", None, Path("/nonexistent-cache-not-used"), 0, 0.15, 0.15)


def small_digits(n_train: int = 400) -> DatasetBundle:
    d = _digits()
    return DatasetBundle(d.name, Split(d.train.x[:n_train], d.train.y[:n_train]), d.val, d.test, d.classes,
                         d.mean, d.std, d.fingerprint + f"-{n_train}")
