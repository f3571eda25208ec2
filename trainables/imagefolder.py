"""`--dataset imagefolder --data-dir DIR`: the user's own images, any classes, any size.

Layout: `DIR/train/<class>/*` with optional `DIR/val/<class>/*` and `DIR/test/<class>/*` (a split
that is absent is carved from train), or `DIR/<class>/*` alone (both carved). Classes are the
training split's folder names, sorted; val and test may hold a subset of them.

Channels follow the first training image: grayscale stays one channel, anything else is RGB,
and every image is converted to that. `image_size` > 0 resizes every image to a square of that
side once, when it is decoded (bilinear); 0 keeps the files' size, which must then be the same
for all. Decoded once, cached under the cache folder, keyed by the files and these settings.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainables.progress import Ticker

SPLITS = ("train", "val", "test")
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


@dataclass(frozen=True)
class FolderPlan:
    """What the folder holds, from file names and one image header; nothing decoded."""

    roots: dict[str, Path]  # split -> folder; "train" always
    files: dict[str, list[Path]]
    classes: list[str]
    in_channels: int
    image_size: int  # the side after decoding (0: the files differ and no --image-size was given)


def plan_folder(data_dir: Path, image_size: int = 0) -> FolderPlan:
    from trainables.data import DataError, image_files, one_line

    layout = (data_dir / "train").is_dir()
    roots = {s: data_dir / s for s in SPLITS if (data_dir / s).is_dir()} if layout else {"train": data_dir}
    # Images in <class>/ folders only: a stray file beside them has no label.
    files = {s: [p for p in image_files(r) if p.parent != r] for s, r in roots.items()}
    if not files["train"]:
        raise DataError(f"no images under {roots['train']}: expected {roots['train']}/<class>/*.jpg|png")
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
    index = {c: i for i, c in enumerate(plan.classes)}
    return {s: _cached(plan.roots[s], plan.files[s], index, plan.in_channels, image_size, cache_dir)
            for s in plan.roots}


def _cached(root: Path, files: list[Path], index: dict[str, int], channels: int, size: int, cache_dir: Path):
    from trainables.data import DataError, one_line

    stats = [(str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    blob = json.dumps([str(root.resolve()), stats, sorted(index.items()), channels, size])
    path = cache_dir / "datasets" / f"folder-{hashlib.sha256(blob.encode()).hexdigest()[:16]}.pt"
    if path.exists():
        try:
            cached = torch.load(path, weights_only=True)
            return cached["x"], cached["y"]
        except Exception as exc:  # noqa: BLE001 - unreadable or incomplete: the same to the user
            raise DataError(f"corrupt dataset cache {path} ({one_line(exc)}); delete it to decode again") from None
    x, y = _decode(root, files, index, channels, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"x": x, "y": y}, tmp)
    os.replace(tmp, path)  # atomic: an interrupted write never leaves a half cache behind
    return x, y


def _decode(root: Path, files: list[Path], index: dict[str, int], channels: int, size: int):
    from PIL import Image

    from trainables.data import DataError, one_line

    print(f"decoding {len(files)} images under {root} once (cached afterwards)", flush=True)
    arrays, bad = [], []
    ticker = Ticker("  decoded", len(files), stream=sys.stdout)
    for p in files:
        try:
            with Image.open(p) as img:
                img = img.convert("L" if channels == 1 else "RGB")
                if size:
                    img = img.resize((size, size), Image.BILINEAR)
                arrays.append(np.asarray(img).reshape(img.size[1], img.size[0], channels))
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            bad.append(f"{p} ({one_line(exc)})")
        ticker.update(len(arrays) + len(bad))
    if bad:  # every corrupt file found in one pass, so one fix round is enough
        raise DataError(f"{len(bad)} of {len(files)} images under {root} cannot be decoded, e.g. {bad[0]}; "
                        "expected readable images: delete or replace them")
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1 or arrays[0].shape[0] != arrays[0].shape[1]:
        odd = next(p for p, a in zip(files, arrays) if a.shape != arrays[0].shape or a.shape[0] != a.shape[1])
        raise DataError(f"{odd} is {arrays[files.index(odd)].shape[1]}x{arrays[files.index(odd)].shape[0]} while "
                        f"{files[0]} is {arrays[0].shape[1]}x{arrays[0].shape[0]}; expected square images of one "
                        "size, or --image-size N to resize them all to NxN")
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    y = torch.tensor([index[p.relative_to(root).parts[0]] for p in files], dtype=torch.int64)
    return x, y
