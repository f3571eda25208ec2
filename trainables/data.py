"""Datasets decoded once to uint8 tensors, split into train / validation / test.

The validation split (carved from the training data) drives the search; the test split is
only reported. Decoding happens once and is cached on disk; trials get the tensors through
Ray's object store and never decode anything per epoch.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainables.errors import DataError
from trainables.errors import one_line as one_line  # re-exported: baseline.py imports it from here
from trainables.imagefolder import cached_images, image_files, load_folder, plan_folder

DATASETS = ("digits", "cifar10", "imagefolder")
# Sizes known without decoding anything: scikit-learn's digits, torchvision's CIFAR-10 train split.
KNOWN_SIZES = {"digits": (1797, [str(c) for c in range(10)]), "cifar10": (50000, [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"])}


@dataclass
class Split:
    x: torch.Tensor  # uint8, N x C x H x W
    y: torch.Tensor  # int64, N

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device) -> Split:
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
    fingerprint: str  # identifies the exact images, split and normalization, for the baseline cache key

    def to(self, device) -> DatasetBundle:
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
    image_size: int = 0,
    normalize: str = "auto",
) -> DatasetBundle:
    """`image_size` and `normalize` are for imagefolder (trainables.imagefolder, parse_normalize);
    normalize applies to every dataset."""
    val = None
    if name == "digits":
        images, labels, classes, test = _digits()
    elif name == "cifar10":
        images, labels, classes, test = _cifar10(data_dir, cache_dir)
    elif name == "imagefolder":
        if data_dir is None:
            raise DataError("--data-dir is required for imagefolder (DIR/train/<class>/*, optional DIR/val, DIR/test)")
        plan = plan_folder(data_dir, image_size)
        splits = load_folder(plan, image_size, cache_dir)
        (images, labels), classes = splits["train"], plan.classes
        test, val = splits.get("test"), splits.get("val")
    else:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    bundle = _split(name, images, labels, classes, test, split_seed, val_fraction, test_fraction, train_subset, val)
    return _normalized(bundle, normalize)


def parse_normalize(text: str, channels: int | None = None) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """`auto` -> None (the training split's mean/std); `none` -> pixels in [0, 1]; `MEAN,STD` or
    `M1,..,Mc,S1,..,Sc` as torchvision's Normalize takes them. ValueError when malformed."""
    if text == "auto":
        return None
    if text == "none":
        return (0.0,), (1.0,)
    values = [float(v) for v in text.split(",")]
    if len(values) % 2 or not values or not all(np.isfinite(values)):
        raise ValueError(text)
    half = len(values) // 2
    mean, std = tuple(values[:half]), tuple(values[half:])
    if any(s <= 0 for s in std) or (channels is not None and half not in (1, channels)):
        raise ValueError(text)
    return mean, std


def _normalized(data: DatasetBundle, normalize: str) -> DatasetBundle:
    given = parse_normalize(normalize, data.in_channels)
    if given is None:
        return data
    c = data.in_channels
    mean, std = (tuple(v * (c if len(v) == 1 else 1)) for v in given)  # one value serves every channel
    fingerprint = hashlib.sha256(f"{data.fingerprint}|{mean}|{std}".encode()).hexdigest()[:16]
    return DatasetBundle(data.name, data.train, data.val, data.test, data.classes, mean, std, fingerprint)


@dataclass(frozen=True)
class SplitPlan:
    """Split sizes and classes, known before any image is decoded."""

    n_train: int
    n_val: int
    n_test: int
    classes: list[str]
    in_channels: int = 0  # 0: unknown before decoding
    image_size: int = 0


def split_sizes(n: int, has_test: bool, val_fraction: float, test_fraction: float,
                train_subset: int) -> tuple[int, int, int]:
    """(train, val, test held out of n); `_split` carves exactly these."""
    n_val = int(round(val_fraction * n))
    n_test = 0 if has_test else int(round(test_fraction * n))
    n_train = n - n_val - n_test
    return (min(n_train, train_subset) if train_subset else n_train), n_val, n_test


def plan_splits(name: str, data_dir: Path | None, val_fraction: float, test_fraction: float,
                train_subset: int, image_size: int = 0) -> SplitPlan:
    """What `load_dataset` will produce, from file names only (an image folder is listed, not
    decoded), so a search can check its settings against the data before anything starts."""
    if name == "imagefolder":
        folder = plan_folder(data_dir, image_size)
        n_val, n_test = len(folder.files.get("val", [])), len(folder.files.get("test", []))
        n = len(folder.files["train"])
        n_train, carved_val, carved_test = split_sizes(n, "test" in folder.roots, 0.0 if n_val else val_fraction,
                                                       test_fraction, train_subset)
        return SplitPlan(n_train, n_val or carved_val, n_test or carved_test, folder.classes, folder.in_channels,
                         folder.image_size)
    if name == "cifar10" and data_dir is not None and (data_dir / "train").is_dir():
        files = image_files(data_dir / "train")
        classes = sorted({p.relative_to(data_dir / "train").parts[0] for p in files})  # as the decoder labels
        n, has_test = len(files), (data_dir / "test").is_dir()
    else:  # digits, or torchvision's CIFAR-10 (local or downloaded): fixed sizes
        n, classes = KNOWN_SIZES[name]
        has_test = name == "cifar10"
    n_train, n_val, n_test = split_sizes(n, has_test, val_fraction, test_fraction, train_subset)
    shape = (1, 8) if name == "digits" else (3, 32)
    return SplitPlan(n_train, n_val, n_test, classes, *shape)


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Pixel values are 0..16; scale to the uint8 range every other dataset uses.
    x = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return torch.from_numpy(x), torch.from_numpy(digits.target.astype(np.int64)), [str(c) for c in range(10)], None


def _cifar10(data_dir: Path | None, cache_dir: Path):
    if data_dir is None:
        raise DataError("--data-dir is required for cifar10 (a torchvision copy, an image-folder tree, "
                        "or a folder to download into)")
    if (data_dir / "train").is_dir():
        train = _image_tree(data_dir / "train", cache_dir)
        test = _image_tree(data_dir / "test", cache_dir) if (data_dir / "test").is_dir() else None
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


def _image_tree(root: Path, cache_dir: Path):
    """`root/<class>/*` as (x, y, classes): RGB at the files' size, through imagefolder's one
    decoder and cache (a folder read as cifar10 and as --dataset imagefolder is decoded once)."""
    files = image_files(root)
    if not files:
        raise DataError(f"no images under {root}: expected {root}/<class>/*.jpg")
    classes = sorted({p.relative_to(root).parts[0] for p in files})
    x, y = cached_images(root, files, classes, 3, 0, cache_dir)
    return x, y, classes


def _split(name, images, labels, classes, test, split_seed, val_fraction, test_fraction, train_subset, given_val=None):
    """Carves val (unless given) and test (unless given) from the training images."""
    gen = torch.Generator().manual_seed(split_seed)
    order = torch.randperm(len(labels), generator=gen)
    n_train, n_val, n_test = split_sizes(len(labels), test is not None, 0.0 if given_val is not None else val_fraction,
                                         test_fraction, train_subset)
    val_idx, test_idx = order[:n_val], order[n_val : n_val + n_test]
    train_idx = order[n_val + n_test :][:n_train]
    train = Split(images[train_idx], labels[train_idx])
    val = Split(*given_val) if given_val is not None else Split(images[val_idx], labels[val_idx])
    test_split = Split(*test) if test is not None else Split(images[test_idx], labels[test_idx])
    pixels = train.x.float().div_(255)
    mean = tuple(pixels.mean(dim=(0, 2, 3)).tolist())
    std = tuple(pixels.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist())
    digest = hashlib.sha256()
    # A given val split's images are not implied by the seed and the training images: hash them too.
    for t in (train.x, train.y, *((val.x,) if given_val is not None else ()), val.y, test_split.y):
        digest.update(t.numpy().tobytes())
    return DatasetBundle(name, train, val, test_split, classes, mean, std, digest.hexdigest()[:16])
