"""The user's trained weights (`--checkpoint`) and early weights for lottery (`--rewind-checkpoint`).

A checkpoint is a state_dict, or a dict holding one under `state_dict` or `model` (what training
scripts commonly save). It is read with torch.load(weights_only=True), so nothing in it runs. Its
content hash keys the baseline cache: the same file under another name is the same baseline.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from trainables.errors import one_line

NESTED_KEYS = ("state_dict", "model")


class CheckpointError(ValueError):
    """A checkpoint that does not load or does not fit the model; one line, exit 2."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_state(path: Path, flag: str = "--checkpoint") -> dict[str, torch.Tensor]:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - not a file, not torch's format, unsafe pickle: one answer
        raise CheckpointError(f"{flag}: {str(path)!r} does not load with torch.load(weights_only=True) "
                              f"({one_line(exc)}); expected a state_dict saved with torch.save(model.state_dict(), "
                              "FILE)") from None
    for key in NESTED_KEYS:
        if isinstance(blob, dict) and isinstance(blob.get(key), dict):
            blob = blob[key]
            break
    if not isinstance(blob, dict) or not blob or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        raise CheckpointError(f"{flag}: {str(path)!r} holds no state_dict; expected a dict of tensors, or a dict "
                              f"with one under {' or '.join(repr(k) for k in NESTED_KEYS)}")
    return dict(blob)


def first_mismatch(model: nn.Module, state: dict[str, torch.Tensor]) -> str | None:
    """None when `state` loads into `model` exactly; else the first difference, in the model's order."""
    expected = model.state_dict()
    for name, tensor in expected.items():
        if name not in state:
            return f"the model's {name!r} is missing from it"
        if tuple(state[name].shape) != tuple(tensor.shape):
            return (f"{name!r} has shape {list(state[name].shape)} in it but {list(tensor.shape)} in the model")
    extra = [k for k in state if k not in expected]
    if extra:
        return f"it has {extra[0]!r}, which the model lacks"
    return None


def check_fits(model: nn.Module, path: Path, flag: str = "--checkpoint") -> dict[str, torch.Tensor]:
    state = load_state(path, flag)
    mismatch = first_mismatch(model, state)
    if mismatch is not None:
        raise CheckpointError(f"{flag}: {str(path)!r} does not fit the model: {mismatch}; expected the "
                              "state_dict of the model --model builds (same layers, same shapes)")
    return state
