"""Models by name, or the user's own factory. Each built-in is sized from the input shape, so one
definition serves 8x8x1 digits and 32x32x3 CIFAR-10. A factory spec is `package.module:function`
or `path/to/file.py:function`; the function returns an nn.Module and gets `num_classes=` (and
`in_channels=` / `image_size=`) when its signature takes them.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path

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


class ModelError(ValueError):
    """A model spec that does not give a model; the CLIs print it as one line and exit 2."""


def is_factory_spec(name: str) -> bool:
    return ":" in name


def resolve_spec(name: str) -> str:
    """The spec as logged: a factory file's path made absolute, so workers and later tools
    (evaluate, export, resume) find it from any directory."""
    if not is_factory_spec(name):
        return name
    target, _, func = name.rpartition(":")
    if target.endswith(".py"):
        return f"{Path(target).expanduser().absolute()}:{func}"
    return name


def model_label(spec: str) -> str:
    """A short name for experiment names and messages: `file:function` for a factory file."""
    if not is_factory_spec(spec):
        return spec
    target, _, func = spec.rpartition(":")
    return f"{Path(target).stem}:{func}" if target.endswith(".py") else spec


def factory_code(spec: str) -> Path | None:
    """The file or package folder holding a factory, when it is the user's own code (not an installed
    package): what a Ray job ships to workers on other machines (runtime_env py_modules)."""
    if not is_factory_spec(spec):
        return None
    target = spec.rpartition(":")[0]
    if target.endswith(".py"):
        return Path(target)
    found = importlib.util.find_spec(target.split(".")[0])
    if found is None or found.origin in (None, "built-in", "frozen"):
        return None
    origin = Path(found.origin)
    if "site-packages" in origin.parts or "dist-packages" in origin.parts or str(origin).startswith(sys.base_prefix):
        return None
    return origin.parent if origin.name == "__init__.py" else origin


def load_factory(spec: str) -> Callable[..., object]:
    target, _, func = spec.rpartition(":")
    accepted = "package.module:function or path/to/file.py:function"
    if not target or not func:
        raise ModelError(f"--model: {spec!r} is not accepted; expected a built-in ({', '.join(sorted(MODELS))}) "
                         f"or a factory, {accepted}")
    try:
        module = _import_file(Path(target)) if target.endswith(".py") else importlib.import_module(target)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code may raise anything while importing
        raise ModelError(f"--model: {spec!r}: {target} does not import ({type(exc).__name__}: "
                         f"{str(exc).strip()[:200]}); expected {accepted}") from None
    factory = getattr(module, func, None)
    if factory is None:
        raise ModelError(f"--model: {spec!r}: {target} has no {func!r}; expected {accepted}")
    if not callable(factory):
        raise ModelError(f"--model: {spec!r}: {func!r} is a {type(factory).__name__}, not callable; "
                         "expected a function returning an nn.Module")
    return factory


def _import_file(path: Path):
    """A factory file as a module. On a Ray worker of another machine the file's path does not
    exist: the module then comes from the job's runtime environment (py_modules), by its stem."""
    if not path.is_file():
        if path.is_absolute() and importlib.util.find_spec(path.stem) is not None:
            return importlib.import_module(path.stem)
        raise ModelError(f"--model: {str(path)!r} is not an existing file; expected path/to/file.py:function")
    # One module name per file content path, registered so that pickling its classes works.
    name = f"prune_search_user_{path.stem}_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _call_factory(spec: str, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    factory = load_factory(spec)
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # some builtins have no signature: call it bare
        params = {}
    # num_classes also through **kwargs (torchvision's builders take it so); the shape arguments
    # only when named, since a **kwargs would pass them on to a constructor that rejects them.
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {"num_classes": num_classes} if "num_classes" in params or takes_any else {}
    kwargs.update({k: v for k, v in (("in_channels", in_channels), ("image_size", image_size)) if k in params})
    try:
        model = factory(**kwargs)
    except Exception as exc:  # noqa: BLE001 - the user's code
        raise ModelError(f"--model: {spec!r} raised {type(exc).__name__}: {str(exc).strip()[:200]}; expected "
                         "a function returning an nn.Module") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"--model: {spec!r} returned {type(model).__name__}, not an nn.Module; expected a "
                         "function returning an nn.Module")
    return model


def build_model(name: str, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    if is_factory_spec(name):
        return _call_factory(name, in_channels, num_classes, image_size)
    try:
        factory = MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}") from None
    return factory(in_channels, num_classes, image_size)
