"""Architectures for the "any model" matrix: torchvision models and small custom topologies that
have broken structured pruning before. Each factory takes (num_classes, in_channels), so a spec
`tests/architectures.py:NAME` works as `--model` too."""
from __future__ import annotations

import torch
import torchvision
from torch import nn
from torch.nn import functional as F


def _conv_bn(c_in: int, c_out: int, k: int = 3, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, padding=k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


class ConcatResidual(nn.Module):
    """Two conv branches concatenated, then a depthwise-separable block whose output is added
    back onto the concatenation (Inception/DenseNet/GhostNet style): the block's channels are
    tied to b1's for the first 12 and to b2's for the other 20."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.b1 = _conv_bn(in_channels, 12)
        self.b2 = _conv_bn(in_channels, 20)
        self.dw = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                                nn.Conv2d(32, 32, 1, bias=False), nn.BatchNorm2d(32))
        self.mid = _conv_bn(32, 24)
        self.head = nn.Linear(24, num_classes)

    def forward(self, x):
        x = torch.cat([self.b1(x), self.b2(x)], dim=1)
        x = F.relu(x + self.dw(x))
        return self.head(self.mid(x).mean(dim=(2, 3)))


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation gates, one with Linear layers and one with 1x1 convs."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.stem = _conv_bn(in_channels, 16)
        self.fc_down, self.fc_up = nn.Linear(16, 4), nn.Linear(4, 16)
        self.body = _conv_bn(16, 32)
        self.se_down, self.se_up = nn.Conv2d(32, 8, 1), nn.Conv2d(8, 32, 1)
        self.head = nn.Linear(32, num_classes)

    def forward(self, x):
        x = self.stem(x)
        gate = torch.sigmoid(self.fc_up(F.relu(self.fc_down(x.mean(dim=(2, 3))))))
        x = self.body(x * gate[:, :, None, None])
        x = x * torch.sigmoid(self.se_up(F.relu(self.se_down(x.mean(dim=(2, 3), keepdim=True)))))
        return self.head(x.mean(dim=(2, 3)))


class GroupedConv(nn.Module):
    """A grouped conv that is not depthwise (groups=4 of 32 channels) between plain convs."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.stem = _conv_bn(in_channels, 32)
        self.grouped = _conv_bn(32, 32, groups=4)
        self.tail = _conv_bn(32, 16)
        self.head = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.head(self.tail(self.grouped(self.stem(x))).mean(dim=(2, 3)))


class SharedTwice(nn.Module):
    """One conv module called twice in the forward pass (weight sharing)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.stem = _conv_bn(in_channels, 16)
        self.shared = nn.Conv2d(16, 16, 3, padding=1)
        self.tail = _conv_bn(16, 24)
        self.head = nn.Linear(24, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = F.relu(self.shared(F.relu(self.shared(x))))
        return self.head(self.tail(x).mean(dim=(2, 3)))


class FunctionalConv(nn.Module):
    """A Conv2d whose weight is used through F.conv2d, never called as a module."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.stem = _conv_bn(in_channels, 16)
        self.func = nn.Conv2d(16, 16, 3, padding=1)
        self.tail = _conv_bn(16, 24)
        self.head = nn.Linear(24, num_classes)

    def forward(self, x):
        x = F.relu(F.conv2d(self.stem(x), self.func.weight, self.func.bias, padding=1))
        return self.head(self.tail(x).mean(dim=(2, 3)))


class ClassifierFirst(nn.Module):
    """The classifier defined before a hidden Linear: definition order must not decide which
    layer is the classifier."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.classifier = nn.Linear(32, num_classes)
        self.conv = _conv_bn(in_channels, 16)
        self.fc = nn.Linear(16, 32)

    def forward(self, x):
        return self.classifier(F.relu(self.fc(self.conv(x).mean(dim=(2, 3)))))


class OutsideTree(nn.Module):
    """A conv held outside the module tree (a plain attribute the model does not register):
    its weights are neither the model's parameters nor prunable layers."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        self.stem = _conv_bn(in_channels, 16)
        object.__setattr__(self, "outside", nn.Conv2d(16, 16, 1))
        self.tail = _conv_bn(16, 24)
        self.head = nn.Linear(24, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.outside(x)
        return self.head(self.tail(x).mean(dim=(2, 3)))


def concat_residual(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    return ConcatResidual(num_classes, in_channels)


CUSTOM = {"concat_residual": ConcatResidual, "squeeze_excite": SqueezeExcite, "grouped_conv": GroupedConv,
          "shared_twice": SharedTwice, "functional_conv": FunctionalConv, "classifier_first": ClassifierFirst,
          "outside_tree": OutsideTree}

# torchvision's builders with what a 3x32x32 input and a fine-tune in train mode need.
TORCHVISION = {
    "resnet18": lambda k: torchvision.models.resnet18(num_classes=k),
    "mobilenet_v2": lambda k: torchvision.models.mobilenet_v2(num_classes=k),
    "mobilenet_v3_small": lambda k: torchvision.models.mobilenet_v3_small(num_classes=k),
    "efficientnet_b0": lambda k: torchvision.models.efficientnet_b0(num_classes=k),
    "densenet121": lambda k: torchvision.models.densenet121(num_classes=k),
    "googlenet": lambda k: torchvision.models.googlenet(num_classes=k, aux_logits=False, init_weights=False),
    "shufflenet_v2_x0_5": lambda k: torchvision.models.shufflenet_v2_x0_5(num_classes=k),
    "squeezenet1_0": lambda k: torchvision.models.squeezenet1_0(num_classes=k),
    "regnet_x_400mf": lambda k: torchvision.models.regnet_x_400mf(num_classes=k),
    "convnext_tiny": lambda k: torchvision.models.convnext_tiny(num_classes=k),
    "mnasnet0_5": lambda k: torchvision.models.mnasnet0_5(num_classes=k),
    "vgg11_bn": lambda k: torchvision.models.vgg11_bn(num_classes=k),
}


def build(name: str, num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    if name in CUSTOM:
        return CUSTOM[name](num_classes, in_channels)
    return TORCHVISION[name](num_classes)


def _factory(name: str):
    def factory(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
        return build(name, num_classes, in_channels)

    factory.__name__ = factory.__qualname__ = name
    return factory


# One module-level factory per architecture, so `tests/architectures.py:resnet18` is a model spec.
globals().update({name: _factory(name) for name in (*CUSTOM, *TORCHVISION) if name != "concat_residual"})
