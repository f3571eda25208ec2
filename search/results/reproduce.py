"""Rebuild a trial's model and data from what MLflow stored; shared by evaluate, export and
register.

A trial run holds its flat config (params), the compressed fine-tuned weights
(`model/weights.pt`, trainables.compress.encode) and, for structural methods, the kept output
channels (`model/kept_channels.json`). Its parent (the search) holds the data settings. So:
data = the parent's split; architecture = build_model, minus the removed channels
(pruners.surgery.rebuild); weights = compress.decode. Nothing is retrained.
"""
from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from torch import nn

from mlflow_config import artifacts
from search.results.cli_kit import DEFAULT_HOME, UsageError
from trainables.data import DataError, DatasetBundle, Split
from trainables.loops import Normalizer
from trainables.progress import Ticker
from trainables.trial_config import TrialConfig

KEPT_FILE = f"{artifacts.WEIGHTS_DIR}/{artifacts.KEPT_CHANNELS_FILE}"
WEIGHTS_PATH = f"{artifacts.WEIGHTS_DIR}/{artifacts.WEIGHTS_FILE}"


class ReproduceError(UsageError):
    """An unusable run or trial (the CLIs print it as one line and exit 2)."""


# ---- the trial -------------------------------------------------------------------------------

@dataclass
class Trial:
    run: Run
    parent: Run
    config: TrialConfig  # the typed config the trial ran with, read back from its params
    model: nn.Module  # the pruned, fine-tuned model, in eval mode, on CPU
    data: DatasetBundle
    norm: Normalizer  # evaluation normalization (training split's mean/std, no augmentation)
    artifact_bytes: int  # size of model/weights.pt on disk
    encoded_bytes: int  # compress.size_bytes of its tensors: what the trial logged as size_bytes
    stored_tensors: int  # torch.save adds a zip entry and a pickle record per tensor

    @property
    def example(self) -> torch.Tensor:
        return self.norm(self.data.val.x[:1])


def get_trial_runs(client: MlflowClient, run_id: str, uri: str) -> tuple[Run, Run]:
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise ReproduceError(f"--run-id: {run_id!r} is not a run in {uri}; expected the id of a trial "
                             "(child) run of a search") from None
    parent_id = run.data.tags.get("mlflow.parentRunId")
    if run.data.tags.get("role") == "search" or not parent_id:
        raise ReproduceError(f"--run-id: {run_id!r} is not a trial run (it has no parent search); expected one "
                             "of a search's child runs, e.g. filter tags.pareto = 'true'")
    if run.info.status != "FINISHED":
        raise ReproduceError(f"--run-id: trial {run_id!r} is {run.info.status}; expected a FINISHED trial")
    return run, client.get_run(parent_id)


def load_trial(client: MlflowClient, run_id: str, uri: str, *, home: Path | None = None,
               dataset: str | None = None, data_dir: Path | None = None) -> Trial:
    run, parent = get_trial_runs(client, run_id, uri)
    with _caches_kept_only_on_success(home or Path(parent.data.params.get("home", str(DEFAULT_HOME)))):
        return _load_trial(client, run, parent, run_id, home, dataset, data_dir)


@contextlib.contextmanager
def _caches_kept_only_on_success(home: Path) -> Iterator[None]:
    """Data decoded for a trial it turns out not to fit is not left in the search's --home:
    dataset caches this call created are removed when it fails."""
    folder = home.resolve() / "datasets"
    before = set(folder.iterdir()) if folder.is_dir() else set()
    try:
        yield
    except BaseException:
        for path in (set(folder.iterdir()) if folder.is_dir() else set()) - before:
            path.unlink(missing_ok=True)
        raise


def _load_trial(client, run, parent, run_id, home, dataset, data_dir) -> Trial:
    from pruners.base import load_weights
    from pruners.surgery import rebuild
    from trainables import compress
    from trainables.baseline import normalizer
    from trainables.models import ModelError, build_model

    data = load_search_data(parent, home, dataset, data_dir)
    norm = normalizer(data, False)
    tc = TrialConfig.from_flat(run.data.params)  # the same typed config the trial ran with
    try:  # a factory's module may be gone since the search ran
        model = build_model(tc.model, data.in_channels, data.num_classes, data.image_size)
    except ModelError as exc:
        raise ReproduceError(f"{exc} (the model of trial {run_id!r})") from None
    with tempfile.TemporaryDirectory() as tmp:
        stored = {a.path for a in client.list_artifacts(run_id, artifacts.WEIGHTS_DIR)}
        if WEIGHTS_PATH not in stored:
            raise ReproduceError(f"--run-id: trial {run_id!r} has no {WEIGHTS_PATH} artifact; it was recorded "
                                 "before weights were stored and cannot be rebuilt")
        path = artifacts.download(client, run_id, WEIGHTS_PATH, Path(tmp))
        artifact_bytes = path.stat().st_size
        encoded = torch.load(path, weights_only=True)  # never runs code from an artifact
        if KEPT_FILE in stored:
            kept = json.loads(artifacts.download(client, run_id, KEPT_FILE, Path(tmp)).read_text())
            model = rebuild(model, kept, norm(data.val.x[:1]))
    try:
        load_weights(model, compress.decode(encoded))
    except RuntimeError:  # shapes differ: the data given does not match the trial's model
        raise ReproduceError(f"--dataset/--data-dir: {data.name} images ({data.in_channels}x{data.image_size}x"
                             f"{data.image_size}, {data.num_classes} classes) do not fit trial {run_id!r}'s "
                             f"model; expected the search's dataset, {parent.data.params['dataset']}") from None
    return Trial(run, parent, tc, model.eval(), data, norm, artifact_bytes, compress.size_bytes(encoded), len(encoded))


def load_search_data(parent: Run, home: Path | None, dataset: str | None, data_dir: Path | None) -> DatasetBundle:
    from trainables.data import load_dataset

    p = parent.data.params
    recorded = None if p.get("data_dir") in (None, "None", "") else Path(p["data_dir"])
    folder = data_dir or recorded
    if folder is not None and not folder.is_dir():
        origin = "--data-dir" if data_dir else f"--data-dir (the search used {recorded}, which is gone)"
        raise ReproduceError(f"{origin}: {str(folder)!r} is not an existing folder; expected the dataset's folder")
    # The search's own home caches decoded image folders; a relative one meant the search's cwd.
    cache = home or Path(p.get("home", str(DEFAULT_HOME)))
    try:
        # image_size and normalize: absent from searches recorded before they existed (then 0 / auto).
        # split_seed: absent or "None" for searches that split with --seed.
        split_seed = p.get("split_seed", "None")
        return load_dataset(dataset or p["dataset"], folder, cache.resolve(),
                            int(p["seed"] if split_seed == "None" else split_seed),
                            float(p["val_fraction"]), float(p["test_fraction"]), int(p["train_subset"]),
                            int(p.get("image_size", 0)), p.get("normalize", "auto"))
    except DataError as exc:
        raise ReproduceError(str(exc)) from None


@contextlib.contextmanager
def trial_threads(parent: Run) -> Iterator[None]:
    """Run with the trial's thread count, so reductions split the same way as when it was
    measured; restored afterwards (torch threads are process-global)."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(float(parent.data.params.get("cpus_per_trial", before)))))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_image_folder(root: Path, data: DatasetBundle) -> Split:
    """An image-folder tree `<class>/*.png|jpg` with (a subset of) the trial's classes, decoded like
    the trial's images (trainables.imagefolder.decode_images) to its channels, labelled by class NAME
    so folder order does not matter. Not resized, not cached: each image must be the trial's size."""
    from PIL import Image

    from trainables.imagefolder import IMAGE_SUFFIXES, decode_images

    if not root.is_dir():
        raise ReproduceError(f"--test-dir: {str(root)!r} is not an existing folder; expected <class>/*.jpg images")
    files = sorted(p for p in root.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ReproduceError(f"--test-dir: no images in {root}; expected <class>/*.jpg or *.png")
    unknown = sorted({p.parent.name for p in files} - set(data.classes))
    if unknown:
        raise ReproduceError(f"--test-dir: class folder(s) {unknown} are not classes of the trial; "
                             f"expected folders named {data.classes}")
    size = data.image_size
    for p in files:  # headers only: a wrong size is named before anything is decoded
        # A file that does not open is left to decode_images, which names every such file at once.
        with contextlib.suppress(OSError, SyntaxError, ValueError, Image.DecompressionBombError), Image.open(p) as img:
            if img.size != (size, size):
                raise ReproduceError(f"--test-dir: {p} is {img.size[0]}x{img.size[1]}; expected {size}x{size}")
    try:
        x, y = decode_images(root, files, data.classes, data.in_channels, 0,
                             on_image=Ticker(f"decoding {root}", len(files)).update)
    except DataError as exc:  # corrupt images are rejected, named (README)
        raise ReproduceError(f"--test-dir: {exc}") from None
    return Split(x, y)
