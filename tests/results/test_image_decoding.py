"""One decoder and one cache for image folders: the cifar10 image-folder tree, --dataset imagefolder
(a search, or evaluate/export rebuilding a trial's splits) and evaluate --test-dir all decode
through trainables.imagefolder.decode_images; a folder read by any of them is one cache file."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from search.results import reproduce
from trainables import imagefolder
from trainables.data import load_dataset


def make(root: Path, size: int = 8) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", 5), ("test", 2)):
        for c in ("ant", "bee"):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / split / c / f"{i}.png")
    return root


def search_run(dataset: str, data_dir: Path, home: Path) -> SimpleNamespace:
    """What reproduce reads of a search's MLflow run: its params."""
    params = {"dataset": dataset, "data_dir": str(data_dir), "home": str(home), "seed": "0", "val_fraction": "0.2",
              "test_fraction": "0.2", "train_subset": "0", "image_size": "0", "normalize": "auto"}
    return SimpleNamespace(data=SimpleNamespace(params=params))


@pytest.fixture
def decoded(monkeypatch) -> list[Path]:
    """The folders decode_images is asked for, in order (it still decodes them)."""
    roots, real = [], imagefolder.decode_images

    def spy(root, *args, **kwargs):
        roots.append(root)
        return real(root, *args, **kwargs)

    monkeypatch.setattr(imagefolder, "decode_images", spy)
    return roots


def test_every_path_decodes_through_the_one_decoder(tmp_path, decoded):
    data = make(tmp_path / "d")
    load_dataset("cifar10", data, tmp_path / "h1")
    load_dataset("imagefolder", data, tmp_path / "h2")
    trial_data = reproduce.load_search_data(search_run("imagefolder", data, tmp_path / "h3"), None, None, None)
    assert decoded == [data / "train", data / "test"] * 3
    decoded.clear()
    split = reproduce.load_image_folder(data / "test", trial_data)
    assert decoded == [data / "test"]
    assert torch.equal(split.x, trial_data.test.x) and torch.equal(split.y, trial_data.test.y)


def test_a_folder_has_one_cache_key_whichever_path_asks(tmp_path, decoded):
    data, home = make(tmp_path / "d"), tmp_path / "home"
    first = load_dataset("cifar10", data, home, 0, 0.2, 0.2)
    cached = sorted((home / "datasets").iterdir())
    assert decoded == [data / "train", data / "test"] and len(cached) == 2
    decoded.clear()
    again = [load_dataset("imagefolder", data, home, 0, 0.2, 0.2), load_dataset("cifar10", data, home, 0, 0.2, 0.2),
             reproduce.load_search_data(search_run("imagefolder", data, home), None, None, None)]
    assert decoded == [] and sorted((home / "datasets").iterdir()) == cached  # all read the same two files
    assert all(torch.equal(d.train.x, first.train.x) and d.fingerprint == first.fingerprint for d in again)


def test_test_dir_corrupt_images_are_all_counted_and_one_named(tmp_path):
    data = make(tmp_path / "d")
    trial_data = load_dataset("imagefolder", data, tmp_path / "home")
    for i in range(2):
        (data / "test" / "bee" / f"bad{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(reproduce.ReproduceError, match=rf"^--test-dir: 2 of 6 images under {data / 'test'} cannot "
                                                       rf"be decoded, e\.g\. {data / 'test' / 'bee'}/bad0\.png \("):
        reproduce.load_image_folder(data / "test", trial_data)


def test_test_dir_of_another_size_is_named_before_decoding(tmp_path, decoded):
    trial_data = load_dataset("imagefolder", make(tmp_path / "d"), tmp_path / "home")
    other = make(tmp_path / "other", size=9)
    decoded.clear()
    with pytest.raises(reproduce.ReproduceError, match=rf"^--test-dir: {other / 'test' / 'ant'}/0\.png is 9x9; "
                                                       "expected 8x8$"):
        reproduce.load_image_folder(other / "test", trial_data)
    assert decoded == []
