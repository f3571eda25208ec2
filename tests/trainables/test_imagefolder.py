"""--dataset imagefolder: the user's folder as splits, resized once, grayscale or RGB, normalized
as asked; val/test taken from the folder when present, carved otherwise."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainables.data import DataError, load_dataset, parse_normalize, plan_splits


def make(root: Path, splits: dict[str, int], classes=("ant", "bee", "cat"), size=(10, 12), mode="RGB") -> Path:
    rng = np.random.default_rng(0)
    for split, n in splits.items():
        for c in classes:
            folder = root / split / c
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
                Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(folder / f"{i}.png")
    return root


def test_given_val_and_test_are_used_and_images_resized_once(tmp_path):
    root = make(tmp_path / "d", {"train": 6, "val": 2, "test": 3})
    plan = plan_splits("imagefolder", root, 0.1, 0.1, 0, 8)
    d = load_dataset("imagefolder", root, tmp_path / "home", 0, 0.1, 0.1, 0, 8)
    assert (len(d.train), len(d.val), len(d.test)) == (18, 6, 9) == (plan.n_train, plan.n_val, plan.n_test)
    assert d.train.x.shape[1:] == (3, 8, 8) and d.train.x.dtype == torch.uint8
    assert d.classes == ["ant", "bee", "cat"] == plan.classes and (plan.in_channels, plan.image_size) == (3, 8)
    assert sorted(d.val.y.tolist()) == [0, 0, 1, 1, 2, 2]


def test_missing_splits_are_carved_and_grayscale_stays_one_channel(tmp_path):
    root = make(tmp_path / "d", {"train": 10}, size=(8, 8), mode="L")
    d = load_dataset("imagefolder", root, tmp_path / "home", 0, 0.2, 0.1, 0)
    assert d.in_channels == 1 and d.image_size == 8
    assert (len(d.train), len(d.val), len(d.test)) == (21, 6, 3)


@pytest.mark.parametrize("empty", [("val",), ("test",), ("val", "test")])
def test_an_empty_split_folder_is_carved_from_train_like_a_missing_one(tmp_path, empty):
    root = make(tmp_path / "d", {"train": 10}, size=(8, 8))
    for split in empty:
        (root / split / "ant").mkdir(parents=True)  # a class folder, no image
    plan = plan_splits("imagefolder", root, 0.2, 0.1, 0)
    d = load_dataset("imagefolder", root, tmp_path / "home", 0, 0.2, 0.1, 0)
    assert (len(d.train), len(d.val), len(d.test)) == (21, 6, 3) == (plan.n_train, plan.n_val, plan.n_test)


def test_normalize_values_and_fingerprint(tmp_path):
    root = make(tmp_path / "d", {"train": 4}, size=(8, 8))
    auto = load_dataset("imagefolder", root, tmp_path / "home", 0, 0.25, 0.25, 0)
    given = load_dataset("imagefolder", root, tmp_path / "home", 0, 0.25, 0.25, 0, 0, "0.5,0.4,0.3,0.2,0.2,0.2")
    plain = load_dataset("imagefolder", root, tmp_path / "home", 0, 0.25, 0.25, 0, 0, "none")
    assert given.mean == (0.5, 0.4, 0.3) and given.std == (0.2, 0.2, 0.2)
    assert plain.mean == (0.0, 0.0, 0.0) and plain.std == (1.0, 1.0, 1.0)
    assert len({auto.fingerprint, given.fingerprint, plain.fingerprint}) == 3  # the baseline cache tells them apart
    for bad in ("1", "0.5,0", "a,b", "0.1,0.2,0.3,0.4", "0.5,inf"):
        with pytest.raises(ValueError):
            parse_normalize(bad, 3)


def test_mixed_sizes_without_image_size_name_a_file(tmp_path):
    root = make(tmp_path / "d", {"train": 2}, size=(8, 8))
    Image.new("RGB", (9, 9)).save(root / "train" / "bee" / "odd.png")
    with pytest.raises(DataError, match=r"odd\.png is 9x9 .* --image-size N"):
        load_dataset("imagefolder", root, tmp_path / "home", 0, 0.25, 0.25, 0)
