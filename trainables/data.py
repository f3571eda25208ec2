"""Datasets decoded once to uint8 tensors, split into train / validation / test.

The validation split (carved from the training data) drives the search; the test split is
only reported. Decoding happens once and is cached on disk; trials get the tensors through
Ray's object store and never decode anything per epoch.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainables.progress import Ticker

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
DATASETS = ("digits", "cifar10")


class DataError(Exception):
    """Missing or unreadable data; the CLI turns it into one line and exit 2."""


@dataclass
class Split:
    x: torch.Tensor  # uint8, N x C x H x W
    y: torch.Tensor  # int64, N

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class DatasetBundle:
    name: str
    train: Split
    val: Split
    test: Split
    classes: list[str]
    mean: tuple[float, ...]  # per channel, of the training split, in [0, 1] units
    std: tuple[float, ...]
    fingerprint: str  # identifies the exact images and split, for the baseline cache key

    def to(self, device) -> "DatasetBundle":
        """The same data on `device`: a GPU trial moves it once, not once per batch."""
        return DatasetBundle(self.name, self.train.to(device), self.val.to(device), self.test.to(device),
                             self.classes, self.mean, self.std, self.fingerprint)

    @property
    def in_channels(self) -> int:
        return self.train.x.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.x.shape[-1]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def load_dataset(
    name: str,
    data_dir: Path | None,
    cache_dir: Path,
    split_seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    train_subset: int = 0,
) -> DatasetBundle:
    if name == "digits":
        images, labels, classes, test = _digits()
    elif name == "cifar10":
        images, labels, classes, test = _cifar10(data_dir, cache_dir)
    else:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return _split(name, images, labels, classes, test, split_seed, val_fraction, test_fraction, train_subset)


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Pixel values are 0..16; scale to the uint8 range every other dataset uses.
    x = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return torch.from_numpy(x), torch.from_numpy(digits.target.astype(np.int64)), [str(c) for c in range(10)], None


def _cifar10(data_dir: Path | None, cache_dir: Path):
    if data_dir is None:
        raise DataError("--data-dir is required for cifar10 (a torchvision copy, an image-folder tree, or a folder to download into)")
    if (data_dir / "train").is_dir():
        train = _cached_image_folder(data_dir / "train", cache_dir)
        test = _cached_image_folder(data_dir / "test", cache_dir) if (data_dir / "test").is_dir() else None
        if test is not None and test[2] != train[2]:
            raise DataError(f"{data_dir}/test classes {test[2]} differ from train classes {train[2]}")
        return train[0], train[1], train[2], None if test is None else (test[0], test[1])
    return _torchvision_cifar10(data_dir)


def _torchvision_cifar10(data_dir: Path):
    from torchvision.datasets import CIFAR10

    present = (data_dir / "cifar-10-batches-py").is_dir()
    try:
        train = CIFAR10(str(data_dir), train=True, download=not present)
        test = CIFAR10(str(data_dir), train=False, download=False)
    except Exception as exc:  # noqa: BLE001 - any download/parse failure means the same to the user
        raise DataError(
            f"no CIFAR-10 in {data_dir}: expected cifar-10-batches-py/ (torchvision format) or "
            f"train/<class>/*.jpg (image folder), and the download failed ({type(exc).__name__}: {exc})"
        ) from None

    def to_tensor(ds):
        return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets, dtype=torch.int64)

    x, y = to_tensor(train)
    return x, y, list(train.classes), to_tensor(test)


def _cached_image_folder(root: Path, cache_dir: Path):
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"no images under {root}: expected {root}/<class>/*.jpg")
    stats = [(str(p.relative_to(root)), p.stat().st_size) for p in files]
    key = hashlib.sha256(json.dumps([str(root.resolve()), stats]).encode()).hexdigest()[:16]
    path = cache_dir / "datasets" / f"{key}.pt"
    if path.exists():
        try:
            blob = torch.load(path, weights_only=True)
            return blob["x"], blob["y"], list(blob["classes"])
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"corrupt dataset cache {path} ({type(exc).__name__}); delete it to decode again") from None
    x, y, classes = _decode_image_folder(root, files)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"x": x, "y": y, "classes": classes}, tmp)
    os.replace(tmp, path)  # atomic: an interrupted write never leaves a half cache behind
    return x, y, classes


def _decode_image_folder(root: Path, files: list[Path]):
    from PIL import Image

    classes = sorted({p.relative_to(root).parts[0] for p in files})
    index = {c: i for i, c in enumerate(classes)}
    first = np.asarray(Image.open(files[0]).convert("RGB"))
    x = np.empty((len(files), *first.shape), dtype=np.uint8)
    y = np.empty(len(files), dtype=np.int64)
    print(f"decoding {len(files)} images under {root} once (cached afterwards)", flush=True)
    ticker = Ticker("  decoded", len(files), stream=sys.stdout)  # with the time left
    for i, p in enumerate(files):
        with Image.open(p) as img:
            arr = np.asarray(img.convert("RGB"))
        if arr.shape != first.shape:
            raise DataError(f"{p} is {arr.shape[1]}x{arr.shape[0]}, expected {first.shape[1]}x{first.shape[0]} like the rest")
        x[i], y[i] = arr, index[p.relative_to(root).parts[0]]
        ticker.update(i + 1)
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y), classes


def _split(name, images, labels, classes, test, split_seed, val_fraction, test_fraction, train_subset):
    gen = torch.Generator().manual_seed(split_seed)
    order = torch.randperm(len(labels), generator=gen)
    n_val = int(round(val_fraction * len(labels)))
    n_test = 0 if test is not None else int(round(test_fraction * len(labels)))
    val_idx, test_idx, train_idx = order[:n_val], order[n_val : n_val + n_test], order[n_val + n_test :]
    if train_subset:
        train_idx = train_idx[:train_subset]
    train = Split(images[train_idx], labels[train_idx])
    val = Split(images[val_idx], labels[val_idx])
    test_split = Split(*test) if test is not None else Split(images[test_idx], labels[test_idx])
    pixels = train.x.float().div_(255)
    mean = tuple(pixels.mean(dim=(0, 2, 3)).tolist())
    std = tuple(pixels.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist())
    digest = hashlib.sha256()
    for t in (train.x, train.y, val.y, test_split.y):
        digest.update(t.numpy().tobytes())
    return DatasetBundle(name, train, val, test_split, classes, mean, std, digest.hexdigest()[:16])
