"""The search from Python: `from search import api`.

    result = api.search(model=build, train=(x, y), val=(xv, yv), budget=50, methods=("fpgm", "hybrid"))
    result.front            # the Pareto front as rows: method, metrics, run_id
    model = api.load_point(result.front[0]["run_id"], home=result.home)

It is the command-line search, not a second one: the splits are written once as an image folder
(PNG, lossless for uint8 pixels) under `home`, the model becomes a factory spec (and an nn.Module
given as such becomes its class plus a checkpoint of its weights), every setting goes through
the CLI's own parser and checks, and the MLflow records are the CLI's. So search.results.evaluate,
search.results.export and --resume work on API searches as on any other.

Images: uint8 N x C x H x W, or floats in [0, 1] (torchvision's ToTensor), C = 1 or 3, square;
labels 0..K-1, each present in `train`. A Dataset yielding (image, label) works too.
"""
from __future__ import annotations

import contextlib
import hashlib
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from search.config import ConfigError, load_config

Data = tuple[torch.Tensor, torch.Tensor] | torch.utils.data.Dataset


@dataclass
class SearchResult:
    exit_code: int
    name: str
    parent_run_id: str
    front: list[dict[str, Any]]  # one row per Pareto trial: method, run_id, val_acc, test_acc, size_bytes, ...
    home: Path
    tracking_uri: str


def search(model: Callable[..., nn.Module] | nn.Module, train: Data, val: Data, test: Data | None = None,
           budget: int = 50, verbose: bool = True, log: Callable[[str], None] | None = None,
           **settings: Any) -> SearchResult:
    """Run a search on `model` with these splits; `settings` are SearchConfig's fields (the CLI's
    flags with underscores: methods=("fpgm",), finetune_epochs=1, home="runs", normalize="none",
    ...). Bad input raises ConfigError (the CLI's one line) before anything starts.

    verbose=True prints the command line's progress lines to stdout while it runs; verbose=False
    prints none of them, and the records still reach the `search` and `trainables` loggers for
    your own logging configuration. `log` (deprecated, removed in the next release): a callable
    given each progress line instead of stdout."""

    from mlflow_config import tracking
    from search.results.cli_kit import printed_logs
    from search.run import run_search

    home = Path(settings.pop("home", ".prune-search")).expanduser().absolute()
    name = settings.pop("name", None) or f"api-{datetime.now():%Y%m%d-%H%M%S}"
    for reserved in ("dataset", "data_dir", "model", "checkpoint", "image_size"):
        if reserved in settings:
            raise ConfigError(f"{reserved}: not a setting of api.search (it comes from model= and the splits)")
    data_dir = write_splits(home, {"train": train, "val": val, **({"test": test} if test is not None else {})})
    model_args = _model_args(model, home)
    argv = ["--budget", str(budget), "--dataset", "imagefolder", "--data-dir", str(data_dir), "--home", str(home),
            "--name", name, *model_args, *_flags(settings)]
    cfg = load_config(argv)
    if log is not None:
        warnings.warn("api.search(log=...) is deprecated and goes in the next release; use verbose=True (stdout) "
                      "or verbose=False with your own logging handlers on the 'search' and 'trainables' loggers",
                      DeprecationWarning, stacklevel=2)
    with printed_logs(log) if verbose or log is not None else contextlib.nullcontext():
        code = run_search(cfg)
    uri = tracking.resolve_tracking_uri(cfg.tracking_uri, home)
    client = tracking.client(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    parent = client.search_runs(experiments, f"tags.search = '{name}' and tags.role = 'search'")[0]
    children = tracking.child_runs(client, parent.info.experiment_id, parent.info.run_id)
    front = [{"method": r.data.tags.get("method"), "run_id": r.info.run_id, **r.data.metrics}
             for r in children if r.data.tags.get("pareto") == "true"]
    front.sort(key=lambda row: row.get("size_bytes", 0.0))
    return SearchResult(code, name, parent.info.run_id, front, home, uri)


def load_point(run_id: str, home: str | Path = ".prune-search", tracking_uri: str | None = None) -> nn.Module:
    """The pruned, fine-tuned model of one trial, rebuilt from MLflow (physically smaller for the
    filter methods, masked weights exactly zero), in eval mode on CPU."""
    from search.results.cli_kit import open_store
    from search.results.reproduce import load_trial

    home = Path(home).expanduser().absolute()
    client, uri = open_store(tracking_uri, home)
    return load_trial(client, run_id, uri, home=home).model


# ---- the model -------------------------------------------------------------------------------

def _model_args(model: Callable[..., nn.Module] | nn.Module, home: Path) -> list[str]:
    if isinstance(model, nn.Module):  # its class is the factory, its weights the checkpoint
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        folder = home / "api-checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        blob = b"".join(v.numpy().tobytes() for v in state.values() if v.numel())
        path = folder / f"{type(model).__name__}-{hashlib.sha256(blob).hexdigest()[:16]}.pt"
        torch.save(state, path)
        return ["--model", factory_spec(type(model)), "--checkpoint", str(path)]
    if not callable(model):
        raise ConfigError(f"model: {model!r} is not accepted; expected an nn.Module or a function returning one")
    return ["--model", factory_spec(model)]


def factory_spec(factory: Callable[..., Any]) -> str:
    """`package.module:function` when importable by name, else `file.py:function`: what the search
    logs and every worker and later tool rebuilds the model from."""
    qualname = getattr(factory, "__qualname__", "")
    if not qualname or "<" in qualname or "." in qualname:
        raise ConfigError(f"model: {factory!r} is not accepted; expected a module-level function or class (one "
                          "that workers and later tools can import by name), not a lambda or nested function")
    module = getattr(factory, "__module__", None)
    if module and module != "__main__" and not module.startswith("prune_search_user_"):
        return f"{module}:{qualname}"
    source = inspect.getsourcefile(factory)
    if source is None:
        raise ConfigError(f"model: {factory!r} has no source file; expected a function defined in a .py file")
    return f"{Path(source).absolute()}:{qualname}"


# ---- the data ----------------------------------------------------------------------------------

def write_splits(home: Path, splits: dict[str, Data]) -> Path:
    """The splits as `home/api-data/<content hash>/<split>/class<k>/<i>.png`, once per content."""
    arrays = {name: _as_uint8(name, data) for name, data in splits.items()}
    digest = hashlib.sha256()
    for name, (x, y) in arrays.items():
        digest.update(name.encode() + x.tobytes() + y.tobytes() + str(x.shape).encode())
    root = home / "api-data" / digest.hexdigest()[:16]
    if (root / "complete").exists():
        return root
    from PIL import Image

    classes = int(arrays["train"][1].max()) + 1
    width = len(str(classes - 1))  # zero-padded, so the folders sort in label order
    missing = sorted(set(range(classes)) - set(arrays["train"][1].tolist()))
    if missing:
        raise ConfigError(f"train: labels {missing[:5]} never occur in it; expected every label 0..{classes - 1}")
    for name, (x, y) in arrays.items():
        if y.min() < 0 or y.max() >= classes:
            raise ConfigError(f"{name}: labels outside 0..{classes - 1} (the training labels)")
        for i, (img, label) in enumerate(zip(x, y)):
            folder = root / name / f"class{int(label):0{width}d}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    (root / "complete").write_text("")
    return root


def _as_uint8(name: str, data: Data) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = torch.as_tensor(data[0]), torch.as_tensor(data[1])
    else:
        items = [data[i] for i in range(len(data))]
        x = torch.stack([torch.as_tensor(img) for img, _ in items])
        y = torch.tensor([int(label) for _, label in items])
    if x.ndim != 4 or x.shape[1] not in (1, 3) or x.shape[2] != x.shape[3] or len(x) != len(y) or not len(x):
        raise ConfigError(f"{name}: images of shape {list(x.shape)} and {len(y)} labels are not accepted; expected "
                          "N x C x S x S images (C = 1 or 3) and N labels, N > 0")
    if x.is_floating_point():
        if x.min() < 0 or x.max() > 1:
            raise ConfigError(f"{name}: float pixels outside [0, 1] are not accepted; expected uint8 or [0, 1] "
                              "floats (give the normalization with normalize='MEAN,STD')")
        x = (x * 255).round()
    return x.to(torch.uint8).numpy(), y.to(torch.int64).numpy()


def _flags(settings: dict[str, Any]) -> list[str]:
    argv = []
    for key, value in settings.items():
        text = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)
        argv += [f"--{key.replace('_', '-')}={text}"]
    return argv
