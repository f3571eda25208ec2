"""One trial, without Ray or MLflow: baseline -> prune -> fine-tune with masks kept ->
(int8) -> evaluate -> measure. `search.tune` wraps it for Ray Tune and records it in MLflow.

`tc` is the typed TrialConfig (trainables.trial_config), built once from the flat config
Optuna, Ray Tune and MLflow share (`method`, `sparsity.<layer>`, `taylor_batches`, ...).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Mapping

import torch

from pruners.base import Distillation, PruneContext
from pruners.layers import prunable_layers
from pruners.quantize import quantize_int8_
from pruners.registry import get_pruner
from trainables import compress
from trainables.baseline import Baseline, normalizer
from trainables.data import DatasetBundle
from trainables.trial_config import TrialConfig
from trainables.loops import batches, evaluate, recalibrate_bn, train
from trainables.measure import TEST_ACC, VAL_ACC, count_flops, count_nonzero, count_params, latency_ms



@dataclass
class TrialOutcome:
    metrics: dict[str, float]
    masks: dict[str, torch.Tensor]
    kept_channels: dict[str, list[int]]
    encoded: dict[str, torch.Tensor]  # the stored model; its bytes are metrics["size_bytes"]
    layer_sparsity: dict[str, float] = field(default_factory=dict)
    # Per prunable layer, the ratio in effect: the sampled one, or for layers the method did not
    # sample (global magnitude, fpgm's classifier) the achieved weight / filter fraction.
    effective_ratios: dict[str, float] = field(default_factory=dict)


def run_trial(tc: TrialConfig, data: DatasetBundle, baseline: Baseline,
              device: str = "cpu", log=lambda msg: None) -> TrialOutcome:
    start = time.perf_counter()
    if device != "cpu":
        data = data.to(device)  # once per trial; batches are then sliced on the device
    seed, epochs, lr, bs = tc.seed, tc.finetune_epochs, tc.finetune.finetune_lr, tc.batch_size
    norm_train, norm_eval = normalizer(data, tc.augment), normalizer(data, False)
    dense = baseline.build(tc.model, data).to(device).eval()
    example = norm_eval(data.val.x[:1])

    def fine_tune(model, masks, distill: Distillation | None = None):
        train(model, data.train, norm_train, epochs=epochs, lr=lr, batch_size=bs, seed=seed, masks=masks,
              teacher=copy.deepcopy(dense) if distill else None, distill=distill, device=device)

    ctx = PruneContext(
        example_input=example,
        batches=lambda: batches(data.train, bs, norm_eval, torch.Generator().manual_seed(seed), device),
        retrain=fine_tune,
        rewind_states={k: v for k, v in baseline.rewind_states.items()},
        recalibrate_bn=lambda m: recalibrate_bn(m, data.train, norm_train, seed=seed, device=device),
    )
    torch.manual_seed(seed)
    log(f"pruning with {tc.method}")
    result = get_pruner(tc.method)(dense, tc.ratios, tc.settings, ctx)
    model, masks = result.model.to(device), dict(result.masks)
    log(f"fine-tuning {epochs} epochs")
    fine_tune(model, masks, result.distill)

    int8_scales = {}
    if result.weight_bits == 8:
        names = [f"{n}.weight" for n in prunable_layers(model)]
        int8_scales = quantize_int8_(model, names)
        params = dict(model.named_parameters())
        # Rounding can send a tiny kept weight to 0; the stored mask says what is stored.
        masks = {n: params[n].detach() != 0 for n in names}

    model.eval()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    masks = {k: v.cpu() for k, v in masks.items()}
    encoded = compress.encode(state, masks, int8_scales)
    dense_size = compress.size_bytes(compress.encode(baseline.state, {}))
    n_params = count_params(model)
    metrics = {
        VAL_ACC: evaluate(model, data.val, norm_eval, device=device),
        TEST_ACC: evaluate(model, data.test, norm_eval, device=device),
        "size_bytes": float(compress.size_bytes(encoded)),
        "size_ratio": compress.size_bytes(encoded) / dense_size,
        "params": float(n_params),
        "nonzero_params": float(count_nonzero(model)),
        "sparsity": 1.0 - count_nonzero(model) / count_params(dense),
        "flops": float(count_flops(model, example)),
        "latency_ms": latency_ms(model, example, tc.latency_batch),
    }
    metrics["cost_s"] = time.perf_counter() - start
    per_layer = {n: 1.0 - float(m.float().mean()) for n, m in masks.items()}
    return TrialOutcome(metrics, masks, dict(result.kept_channels), encoded, per_layer,
                        _effective_ratios(tc.ratios, dense, result.kept_channels, per_layer))


def _effective_ratios(sampled: Mapping[str, float], dense, kept_channels, per_layer) -> dict[str, float]:
    out = {}
    for name, module in prunable_layers(dense).items():
        if name in sampled:
            out[name] = sampled[name]
        elif f"{name}.weight" in per_layer:
            out[name] = per_layer[f"{name}.weight"]
        elif name in kept_channels:
            out[name] = 1.0 - len(kept_channels[name]) / module.weight.shape[0]
        else:
            out[name] = 0.0
    return out
