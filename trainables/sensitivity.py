"""Per-layer sensitivity scan: how much validation accuracy each layer costs when it alone is
pruned, at several ratios, with BatchNorm recalibrated and no fine-tune (seconds per point).

A layer that loses little even at 90% can take an aggressive ratio; one that collapses at 30%
needs a low bound. The search uses the scan to cap each layer's upper bound (`--sensitivity-drop`,
search.space). The scan is cached next to the baseline it was made from (same key plus the
scan's own settings), so later searches on the same baseline reuse it.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from pruners.allocation import keep_mask
from pruners.layers import prunable_layers
from pruners.masking import apply_masks
from trainables.baseline import Baseline, normalizer
from trainables.data import DatasetBundle, Split
from trainables.loops import evaluate, recalibrate_bn

logger = logging.getLogger(__name__)

SCAN_RATIOS = (0.3, 0.5, 0.7, 0.9, 0.95)
SCAN_VAL_IMAGES = 2000  # the first N val images: enough to rank layers, and seconds per point


@dataclass(frozen=True)
class Sensitivity:
    ratios: tuple[float, ...]
    dense_val_acc: float  # on the same val images the scan uses
    val_acc: dict[str, list[float]]  # layer -> val accuracy with that layer alone pruned, per ratio

    def cap(self, layer: str, max_drop: float) -> float:
        """The largest scanned ratio at which pruning `layer` alone costs at most `max_drop`
        accuracy (0.0 when even the smallest one costs more)."""
        ok = [r for r, acc in zip(self.ratios, self.val_acc[layer]) if self.dense_val_acc - acc <= max_drop]
        return max(ok, default=0.0)


def scan(model: torch.nn.Module, data: DatasetBundle, ratios: tuple[float, ...] = SCAN_RATIOS, seed: int = 0,
         val_images: int = SCAN_VAL_IMAGES) -> Sensitivity:
    """Magnitude-prune each prunable layer alone at each ratio, recalibrate BatchNorm on training
    batches, and evaluate. Works on copies: `model` is never changed."""
    val = Split(data.val.x[:val_images], data.val.y[:val_images])
    norm_train, norm_eval = normalizer(data, False), normalizer(data, False)
    dense_acc = evaluate(copy.deepcopy(model), val, norm_eval)
    layers = prunable_layers(model)
    out: dict[str, list[float]] = {}
    for i, name in enumerate(layers, 1):
        accs = []
        for ratio in ratios:
            pruned = copy.deepcopy(model)
            weight = prunable_layers(pruned)[name].weight
            apply_masks(pruned, {f"{name}.weight": keep_mask(weight.detach().abs(), ratio)})
            recalibrate_bn(pruned, data.train, norm_train, seed=seed)
            accs.append(evaluate(pruned, val, norm_eval))
        out[name] = accs
        logger.info(f"sensitivity: layer {i}/{len(layers)} {name}: val_acc " +
                    " ".join(f"{r:g}:{a:.3f}" for r, a in zip(ratios, accs)))
    return Sensitivity(tuple(ratios), dense_acc, out)


def get_sensitivity(baseline: Baseline, model_name: str, data: DatasetBundle, cache_dir: Path, seed: int = 0,
                    ratios: tuple[float, ...] = SCAN_RATIOS) -> Sensitivity:
    """The scan of this baseline, from the cache when it was made before."""
    settings = {"baseline": baseline.key, "ratios": list(ratios), "seed": seed, "val_images": SCAN_VAL_IMAGES}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir / "baselines" / f"{baseline.key}-sensitivity-{key}.json"
    if path.exists():
        blob = json.loads(path.read_text())
        logger.info(f"sensitivity: reusing the scan cached at {path}")
        return Sensitivity(tuple(blob["ratios"]), blob["dense_val_acc"], blob["val_acc"])
    logger.info(f"sensitivity: scanning each layer alone at ratios {', '.join(f'{r:g}' for r in ratios)} "
                "(BatchNorm recalibrated, no fine-tune)")
    result = scan(baseline.build(model_name, data), data, ratios, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(asdict(result)))
    os.replace(tmp, path)  # atomic, like the baseline cache
    return result
