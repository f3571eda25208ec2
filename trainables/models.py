"""Models by name. Each is sized from the input shape, so one definition serves 8x8x1 digits
and 32x32x3 CIFAR-10."""
from __future__ import annotations

from typing import Callable

from torch import nn


class SimpleCNN(nn.Module):
    """The source article's CNN: (conv3x3-BN-ReLU-maxpool) x2, FC 256, FC classes."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int, width: int = 32):
        super().__init__()
        if image_size < 4:  # two 2x2 pools: a smaller map would flatten to nothing
            raise ValueError(f"simplecnn needs images of at least 4x4, got {image_size}x{image_size}")
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


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN pairs plus a shortcut. Where the shape changes the shortcut is option B,
    a 1x1 conv + BN projection, not the paper's CIFAR option A (strided identity zero-padded
    with extra channels): option A's padded channels are a slice-and-pad no dependency graph
    follows, while a projection is an ordinary conv that Torch-Pruning couples to the add."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """He et al. 2016's CIFAR ResNet-(6n+2): a 3x3 stem, three stages of n blocks at 16/32/64
    channels (stride 1, 2, 2), global average pool, one FC. A 3x3 stride-2 conv with padding 1
    never maps a side to 0, so any input size works (8x8 digits end at 2x2)."""

    def __init__(self, n: int, in_channels: int, num_classes: int, widths: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        stages, c_in = [], widths[0]
        for i, c_out in enumerate(widths):
            blocks = [BasicBlock(c_in if b == 0 else c_out, c_out, 2 if i > 0 and b == 0 else 1) for b in range(n)]
            stages.append(nn.Sequential(*blocks))
            c_in = c_out
        self.layer1, self.layer2, self.layer3 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.pool(x).flatten(1))


VGG_CONFIGS = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}


class VGG(nn.Module):
    """VGG with BatchNorm, CIFAR-sized: the conv stacks, then FC 512 and the classifier. A 2x2 pool
    is skipped once the map is 1x1 (it would go to 0), so 8x8 inputs keep three of the five."""

    def __init__(self, config: tuple, in_channels: int, num_classes: int, image_size: int, hidden: int = 512):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, side = in_channels, image_size
        for v in config:
            if v == "M":
                if side >= 2:
                    layers.append(nn.MaxPool2d(2))
                    side //= 2
                continue
            layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
            c_in = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(c_in * side * side, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def resnet18(in_channels: int, num_classes: int) -> nn.Module:
    """torchvision's ImageNet ResNet-18 as is (7x7 stride-2 stem and max pool, so 32x32 inputs end
    at 1x1, 8x8 too: stride-2 convs and pools with padding never reach 0); only the stem's input
    channels follow the data."""
    # Imported here, not at module level: torchvision pulls in torch._dynamo (~1.2 s), which every
    # CLI start and every Ray trial worker would otherwise pay for one optional model.
    import torchvision

    model = torchvision.models.resnet18(num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
    return model


ModelFactory = Callable[[int, int, int], nn.Module]
MODELS: dict[str, ModelFactory] = {
    "simplecnn": lambda c, k, s: SimpleCNN(c, k, s),
    "resnet20": lambda c, k, s: CifarResNet(3, c, k),
    "resnet56": lambda c, k, s: CifarResNet(9, c, k),
    "vgg11": lambda c, k, s: VGG(VGG_CONFIGS["vgg11"], c, k, s),
    "vgg16": lambda c, k, s: VGG(VGG_CONFIGS["vgg16"], c, k, s),
    "resnet18": lambda c, k, s: resnet18(c, k),
}


def build_model(name: str, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    try:
        factory = MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}") from None
    return factory(in_channels, num_classes, image_size)
