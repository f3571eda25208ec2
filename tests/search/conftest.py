"""Fixtures the search tests share: a --home where nothing may start, a small image folder."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def guarded(monkeypatch, tmp_path):
    """Fails the test if Ray would start or data be decoded; no GPU, whatever the machine has.
    Returns the --home folder."""
    import torch

    from search import cluster
    from trainables import data

    monkeypatch.setattr(cluster, "start_ray", lambda *a, **k: pytest.fail("Ray started on bad input"))
    monkeypatch.setattr(data, "load_dataset", lambda *a, **k: pytest.fail("data decoded on bad input"))
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    for var in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "home"


@pytest.fixture
def image_folder(tmp_path):
    from PIL import Image

    def make(classes: list[str], corrupt: int = 0) -> Path:
        root = tmp_path / "images"
        for c in classes:
            (root / "train" / c).mkdir(parents=True)
            for i in range(4):
                Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(root / "train" / c / f"{i}.png")
        for i in range(corrupt):
            (root / "train" / classes[0] / f"bad{i}.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
        return root

    return make
