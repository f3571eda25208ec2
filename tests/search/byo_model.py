"""A user's own model defined in a plain file (depthwise-separable convs, a residual addition, a
channel concatenation, SiLU, global average pooling), passed to searches as `--model FILE:build`,
and the digits written as an image folder on disk with a checkpoint trained by a plain PyTorch
loop: what tests/search/test_byo_model.py and the bad-input tests search with."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn


class SeparableBlock(nn.Module):
    """Depthwise 3x3 then pointwise 1x1, each with BN and SiLU, added to its input."""

    def __init__(self, c: int):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.pw = nn.Conv2d(c, c, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.act = nn.SiLU()

    def forward(self, x):
        return x + self.act(self.bn2(self.pw(self.act(self.bn1(self.dw(x))))))


class TinyNet(nn.Module):
    def __init__(self, num_classes: int, in_channels: int = 1):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.block = SeparableBlock(16)
        self.branch_a = nn.Conv2d(16, 12, 1)
        self.branch_b = nn.Conv2d(16, 12, 3, padding=1)
        self.head = nn.Linear(24, num_classes)
        self.act = nn.SiLU()

    def forward(self, x):
        x = self.block(self.act(self.bn(self.stem(x))))
        x = torch.cat([self.act(self.branch_a(x)), self.act(self.branch_b(x))], dim=1)
        return self.head(x.mean(dim=(2, 3)))  # global average pooling


def build(num_classes: int) -> nn.Module:
    return TinyNet(num_classes)


SPEC = f"{Path(__file__).resolve()}:build"


def write_digits_folder(root: Path) -> Path:
    """scikit-learn's digits as PNG files: DIR/train, DIR/val, DIR/test, one folder per class."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    for i, (img, label) in enumerate(zip(pixels, digits.target)):
        split = "val" if i % 6 == 0 else "test" if i % 6 == 1 else "train"
        folder = root / split / f"digit{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img, mode="L").save(folder / f"{i}.png")
    return root


def read_split(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image

    classes = sorted(p.name for p in folder.iterdir())
    files = sorted(folder.glob("*/*.png"))
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(p), dtype=np.float32) / 255.0)[None] for p in files])
    y = torch.tensor([classes.index(p.parent.name) for p in files])
    return x, y


def train_checkpoint(data_dir: Path, out: Path, init_out: Path) -> None:
    """A plain PyTorch loop, nothing from this project: pixels in [0, 1] (the search then gets
    --normalize none), 4 epochs of Adam."""
    x, y = read_split(data_dir / "train")
    torch.manual_seed(0)
    model = build(10)
    torch.save(model.state_dict(), init_out)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(4):
        for i in torch.randperm(len(y)).split(32):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[i]), y[i]).backward()
            opt.step()
    torch.save({"epoch": 4, "state_dict": model.state_dict()}, out)
