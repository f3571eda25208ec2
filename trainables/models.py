"""Models by name. Each is sized from the input shape, so one definition serves 8x8x1 digits
and 32x32x3 CIFAR-10."""
from __future__ import annotations

from typing import Callable

from torch import nn


class SimpleCNN(nn.Module):
    """The source article's CNN: (conv3x3-BN-ReLU-maxpool) x2, FC 256, FC classes."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int, width: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(2 * width)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU()
        side = image_size // 4
        self.fc1 = nn.Linear(2 * width * side * side, 256)
        self.fc2 = nn.Linear(256, num_classes)

    def forward(self, x):
        x = self.pool(self.relu(self.bn1(self.conv1(x))))
        x = self.pool(self.relu(self.bn2(self.conv2(x))))
        x = self.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


ModelFactory = Callable[[int, int, int], nn.Module]
MODELS: dict[str, ModelFactory] = {
    "simplecnn": lambda c, k, s: SimpleCNN(c, k, s),
}


def build_model(name: str, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    try:
        factory = MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}") from None
    return factory(in_channels, num_classes, image_size)
