"""`--dataset imagefolder --data-dir DIR`: the user's own images, any classes, any size.

Layout: `DIR/train/<class>/*` with optional `DIR/val/<class>/*` and `DIR/test/<class>/*` (a split
that is absent is carved from train), or `DIR/<class>/*` alone (both carved). Classes are the
training split's folder names, sorted; val and test may hold a subset of them.

Channels follow the first training image: grayscale stays one channel, anything else is RGB,
and every image is converted to that. `image_size` > 0 resizes every image to a square of that
side once, when it is decoded (bilinear); 0 keeps the files' size, which must then be the same
for all. Decoded once, cached under the cache folder, keyed by the files and these settings.

`decode_images` and `cached_images` are the one decoder and the one cache of image folders: the
cifar10 image-folder tree (trainables.data) uses both and `evaluate --test-dir` the decoder, so a
folder decodes to the same tensors, and is one cache file, whichever path asks.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainables.errors import DataError, one_line
from trainables.progress import Ticker

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def image_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


@dataclass(frozen=True)
class FolderPlan:
    """What the folder holds, from file names and one image header; nothing decoded."""

    roots: dict[str, Path]  # split -> folder; "train" always
    files: dict[str, list[Path]]
    classes: list[str]
    in_channels: int
    image_size: int  # the side after decoding (0: the files differ and no --image-size was given)


def plan_folder(data_dir: Path, image_size: int = 0) -> FolderPlan:
    layout = (data_dir / "train").is_dir()
    roots = {s: data_dir / s for s in SPLITS if (data_dir / s).is_dir()} if layout else {"train": data_dir}
    # Images in <class>/ folders only: a stray file beside them has no label.
    files = {s: [p for p in image_files(r) if p.parent != r] for s, r in roots.items()}
    if not files["train"]:
        raise DataError(f"no images under {roots['train']}: expected {roots['train']}/<class>/*.jpg|png")
    for split in [s for s in ("val", "test") if s in files and not files[s]]:
        # An empty DIR/val or DIR/test is as good as none: that split is carved from train.
        logger.info(f"{roots[split]} holds no images: the {split} split is carved from {roots['train']}")
        del roots[split], files[split]
    classes = sorted({p.relative_to(roots["train"]).parts[0] for p in files["train"]})
    for split in ("val", "test"):
        extra = sorted({p.relative_to(roots[split]).parts[0] for p in files.get(split, [])} - set(classes))
        if extra:
            raise DataError(f"{roots[split]} has class folder(s) {extra} that {roots['train']} lacks; expected "
                            f"the training classes ({', '.join(classes)}) or a subset")
    from PIL import Image

    first = files["train"][0]
    try:
        with Image.open(first) as img:  # the header only
            mode, (w, h) = img.mode, img.size
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{first} cannot be decoded ({one_line(exc)}); expected readable images: delete or "
                        "replace it") from None
    side = image_size or (w if w == h else 0)
    return FolderPlan(roots, files, classes, 1 if mode in GRAY_MODES else 3, side)


def load_folder(plan: FolderPlan, image_size: int, cache_dir: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Each present split as (uint8 N x C x S x S, int64 labels), decoded once and cached."""
    return {s: cached_images(plan.roots[s], plan.files[s], plan.classes, plan.in_channels, image_size, cache_dir)
            for s in plan.roots}


def cache_path(root: Path, files: list[Path], classes: list[str], channels: int, size: int, cache_dir: Path) -> Path:
    """Everything the tensors depend on, so the same folder decoded the same way is one file,
    whichever dataset asks. A file's size and mtime stand for its content (hashing every image
    would cost about as much as decoding it). Caches of the cifar10 image-folder tree written
    before it shared this key (`datasets/<hash>.pt`, no `folder-` prefix) are decoded once more."""
    stats = [(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    index = sorted({c: i for i, c in enumerate(classes)}.items())
    blob = json.dumps([str(root.resolve()), stats, index, channels, size])
    return cache_dir / "datasets" / f"folder-{hashlib.sha256(blob.encode()).hexdigest()[:16]}.pt"


def cached_images(root: Path, files: list[Path], classes: list[str], channels: int, size: int,
                  cache_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """`decode_images`, once: later calls read the tensors back from `cache_path`."""
    path = cache_path(root, files, classes, channels, size, cache_dir)
    if path.exists():
        try:
            cached = torch.load(path, weights_only=True)
            return cached["x"], cached["y"]
        except Exception as exc:  # noqa: BLE001 - unreadable or incomplete: the same to the user
            raise DataError(f"corrupt dataset cache {path} ({one_line(exc)}); delete it to decode again") from None
    logger.info(f"decoding {len(files)} images under {root} once (cached afterwards)")
    ticker = Ticker("  decoded", len(files), stream=sys.stdout)  # with the time left
    x, y = decode_images(root, files, classes, channels, size, on_image=ticker.update)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"x": x, "y": y}, tmp)
    os.replace(tmp, path)  # atomic: an interrupted write never leaves a half cache behind
    return x, y


def decode_images(root: Path, files: list[Path], classes: list[str], channels: int, size: int,
                  on_image: Callable[[int], None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 N x C x S x S, int64 labels): each file labelled by its first folder under `root` (its
    index in `classes`), converted to L (channels 1) or RGB, resized to size x size (bilinear) when
    size > 0; with 0 the files must already be one square size. `on_image(done)` after each file."""
    from PIL import Image

    arrays, bad = [], []
    for p in files:
        try:
            with Image.open(p) as img:
                img = img.convert("L" if channels == 1 else "RGB")
                if size:
                    img = img.resize((size, size), Image.BILINEAR)
                arrays.append(np.asarray(img).reshape(img.size[1], img.size[0], channels))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            bad.append(f"{p} ({one_line(exc)})")
        if on_image is not None:
            on_image(len(arrays) + len(bad))
    if bad:  # every corrupt file found in one pass, so one fix round is enough
        raise DataError(f"{len(bad)} of {len(files)} images under {root} cannot be decoded, e.g. {bad[0]}; "
                        "expected readable images: delete or replace them")
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1 or arrays[0].shape[0] != arrays[0].shape[1]:
        odd = next(p for p, a in zip(files, arrays) if a.shape != arrays[0].shape or a.shape[0] != a.shape[1])
        raise DataError(f"{odd} is {arrays[files.index(odd)].shape[1]}x{arrays[files.index(odd)].shape[0]} while "
                        f"{files[0]} is {arrays[0].shape[1]}x{arrays[0].shape[0]}; expected square images of one "
                        "size (--dataset imagefolder resizes them all to NxN with --image-size N)")
    index = {c: i for i, c in enumerate(classes)}
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    y = torch.tensor([index[p.relative_to(root).parts[0]] for p in files], dtype=torch.int64)
    return x, y
