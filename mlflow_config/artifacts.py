"""Save and load run artifacts: tensors (masks, compressed weights), JSON, files."""
from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path

import torch
from mlflow.tracking import MlflowClient

MASKS_DIR = "masks"
MASKS_FILE = "masks.pt"
WEIGHTS_DIR = "model"
WEIGHTS_FILE = "weights.pt"
KEPT_CHANNELS_FILE = "kept_channels.json"  # structural methods: output channels kept, per module
SCREEN_FILE = "screen.json"  # the search's run, with --screen: every screened candidate and its score


def log_tensors(client: MlflowClient, run_id: str, tensors: Mapping[str, object], artifact_dir: str, filename: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / filename
        torch.save(dict(tensors), path)
        client.log_artifact(run_id, str(path), artifact_dir)


def log_json(client: MlflowClient, run_id: str, obj: object, artifact_dir: str | None, filename: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / filename
        path.write_text(json.dumps(obj, indent=2, sort_keys=True))
        client.log_artifact(run_id, str(path), artifact_dir)


def download(client: MlflowClient, run_id: str, artifact_path: str, dst: Path) -> Path:
    return Path(client.download_artifacts(run_id, artifact_path, str(dst)))


def load_tensors(client: MlflowClient, run_id: str, artifact_path: str) -> dict:
    """Loads with weights_only=True: an artifact can never run code on the reader's machine."""
    with tempfile.TemporaryDirectory() as tmp:
        return torch.load(download(client, run_id, artifact_path, Path(tmp)), weights_only=True)


def load_json(client: MlflowClient, run_id: str, artifact_path: str) -> object:
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(download(client, run_id, artifact_path, Path(tmp)).read_text())
