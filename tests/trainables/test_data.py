"""Datasets: digits offline, image-folder trees decoded once and cached, clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from trainables.data import DataError, load_dataset


def write_tree(root, per_class=6, size=8):
    rng = np.random.default_rng(0)
    for c in ("cat", "dog", "emu"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / c / f"{i}.png")


def test_digits_splits_are_disjoint_and_sized(tmp_path):
    d = load_dataset("digits", None, tmp_path, 0, 0.15, 0.15)
    assert len(d.train) + len(d.val) + len(d.test) == 1797
    assert d.train.x.dtype == torch.uint8 and d.train.x.shape[1:] == (1, 8, 8)
    assert len(d.val) == round(0.15 * 1797)
    assert d.num_classes == 10


def test_image_folder_is_decoded_once_then_read_from_cache(tmp_path, caplog):
    caplog.set_level("INFO", logger="trainables")
    write_tree(tmp_path / "data" / "train")
    write_tree(tmp_path / "data" / "test", per_class=2)
    a = load_dataset("cifar10", tmp_path / "data", tmp_path / "home", 0, 0.2, 0.2)
    assert "decoding 18 images" in caplog.text
    assert a.classes == ["cat", "dog", "emu"] and len(a.test) == 6  # the given test/ tree is the test split
    caplog.clear()
    b = load_dataset("cifar10", tmp_path / "data", tmp_path / "home", 0, 0.2, 0.2)
    assert "decoding" not in caplog.text
    assert torch.equal(a.train.x, b.train.x) and a.fingerprint == b.fingerprint


def test_missing_dataset_is_one_clear_error(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    def no_network(self):
        raise RuntimeError("download disabled in tests")

    monkeypatch.setattr(CIFAR10, "download", no_network)  # never fetch 170 MB from a test
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no CIFAR-10 in .*cifar-10-batches-py.*image folder"):
        load_dataset("cifar10", tmp_path / "empty", tmp_path / "home")


def test_corrupt_dataset_cache_is_one_clear_error(tmp_path):
    write_tree(tmp_path / "data" / "train")
    load_dataset("cifar10", tmp_path / "data", tmp_path / "home")
    for cached in (tmp_path / "home" / "datasets").glob("*.pt"):
        cached.write_bytes(b"garbage")
    with pytest.raises(DataError, match="corrupt dataset cache"):
        load_dataset("cifar10", tmp_path / "data", tmp_path / "home")


@pytest.mark.parametrize("vf,tf,subset", [(0.1, 0.1, 0), (0.15, 0.2, 0), (0.1, 0.1, 100)])
def test_split_plan_without_decoding_matches_what_is_loaded(tmp_path, vf, tf, subset):
    """The preflight's sizes (rewind point checks) are the loader's, for digits and an image folder."""
    from trainables.data import plan_splits

    write_tree(tmp_path / "data" / "train", per_class=40)
    for name, folder in (("digits", None), ("cifar10", tmp_path / "data")):
        plan = plan_splits(name, folder, vf, tf, subset)
        d = load_dataset(name, folder, tmp_path / "home", 0, vf, tf, subset)
        assert (plan.n_train, plan.n_val, plan.n_test) == (len(d.train), len(d.val), len(d.test)), name
        assert plan.classes == d.classes


def test_corrupt_images_are_all_counted_and_one_is_named(tmp_path):
    write_tree(tmp_path / "data" / "train")
    for i in range(3):
        (tmp_path / "data" / "train" / "dog" / f"broken{i}.jpg").write_bytes(b"\xff\xd8\xff truncated")
    with pytest.raises(DataError, match=r"3 of 21 images under .* cannot be decoded, e\.g\. .*broken0\.jpg "
                                        r"\(UnidentifiedImageError"):
        load_dataset("cifar10", tmp_path / "data", tmp_path / "home")
    assert not (tmp_path / "home" / "datasets").exists()  # no half cache
