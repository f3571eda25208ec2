"""One trial, without Ray or MLflow: baseline -> prune -> fine-tune with masks kept ->
(int8) -> evaluate -> measure. `search.tune` wraps it for Ray Tune and records it in MLflow.

`tc` is the typed TrialConfig (trainables.trial_config), built once from the flat config
Optuna, Ray Tune and MLflow share (`method`, `sparsity.<layer>`, `taylor_batches`, ...).
"""
from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from pruners.base import Distillation, PruneContext
from pruners.layers import prunable_layers
from pruners.quantize import quantize_int8_
from pruners.registry import get_pruner
from trainables import compress
from trainables.baseline import Baseline, normalizer
from trainables.data import DatasetBundle
from trainables.loops import batches, evaluate, recalibrate_bn, total_steps, train
from trainables.measure import PRUNE_VAL_ACC, TEST_ACC, VAL_ACC, count_flops, count_nonzero, count_params, latency_ms
from trainables.trial_config import QUANTIZE, TrialConfig

# DEBUG, not INFO: a trial runs in a Ray worker, whose output Ray forwards to the driver's console;
# the console shows one line per trial (search.tune.Progress), not each trial's steps.
logger = logging.getLogger(__name__)


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
    # Structural results: per prunable layer, the fraction of its output channels removed (0 for
    # a layer left whole: the classifier, a layer the graph cannot prune, a sampled ratio that
    # rounded to no filter). What was pruned, whatever was sampled.
    removed_filters: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # the pruner's notes (pruners.base.PruneResult)


def run_trial(tc: TrialConfig, data: DatasetBundle, baseline: Baseline,
              device: str = "cpu") -> TrialOutcome:
    start = time.perf_counter()
    if device != "cpu":
        data = data.to(device)  # once per trial; batches are then sliced on the device
    seed, epochs, lr, bs = tc.seed, tc.finetune_epochs, tc.finetune.finetune_lr, tc.batch_size
    quantize = tc.finetune.quantize
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize {quantize!r}; expected one of {', '.join(QUANTIZE)}")
    norm_train, norm_eval = normalizer(data, tc.augment), normalizer(data, False)
    dense = baseline.build(tc.model, data).to(device).eval()
    example = norm_eval(data.val.x[:1])

    def fine_tune(model, masks, distill: Distillation | None = None, fake_quant=()):
        train(model, data.train, norm_train, epochs=epochs, lr=lr, batch_size=bs, seed=seed, masks=masks,
              teacher=copy.deepcopy(dense) if distill else None, distill=distill, device=device,
              fake_quant=fake_quant)

    def recalibrate(model):
        # Unaugmented training images: evaluation sees unaugmented inputs, so these are the
        # statistics it needs (the training data, never validation or test).
        recalibrate_bn(model, data.train, norm_eval, seed=seed, device=device)

    recipe = baseline.spec  # the baseline's own training recipe, for lottery's full retraining

    def retrain_from(model, masks, k):
        train(model, data.train, normalizer(data, recipe.augment), epochs=recipe.epochs, lr=recipe.lr,
              batch_size=recipe.batch_size, seed=seed, masks=masks, device=device, schedule=recipe.schedule,
              start_step=k)

    ctx = pruning_context(tc, data, baseline, example, recalibrate, fine_tune, retrain_from, device)
    torch.manual_seed(seed)
    logger.debug(f"pruning with {tc.method}")
    result = get_pruner(tc.method)(dense, tc.ratios, tc.settings, ctx)
    for note in result.notes:
        logger.debug(f"note: {note}")
    model, masks = result.model.to(device), dict(result.masks)
    prune_val_acc = evaluate_pruned(model, data, norm_eval, recalibrate if result.kept_channels else None, device)
    names = [f"{n}.weight" for n in prunable_layers(model)]
    if not result.trained:
        logger.debug(f"fine-tuning {epochs} epochs")
        fine_tune(model, masks, result.distill, fake_quant=names if quantize == "int8" and result.qat else ())

    int8_scales = {}
    if quantize == "int8":
        int8_scales, masks = int8_for_storage(model)
        # The fine-tune's running statistics belong to the float weights; int8 shifts every
        # activation a little, so they are re-estimated for the weights actually stored.
        recalibrate(model)

    model.eval()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    masks = {k: v.cpu() for k, v in masks.items()}
    encoded = compress.encode(state, masks, int8_scales)
    dense_size = compress.size_bytes(compress.encode(baseline.state, {}))
    n_params = count_params(model)
    metrics = {
        VAL_ACC: evaluate(model, data.val, norm_eval, device=device),
        TEST_ACC: evaluate(model, data.test, norm_eval, device=device),
        PRUNE_VAL_ACC: prune_val_acc,
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
    # The ratios in effect are the pruning's: int8 rounding zeros are stored (per_layer) but
    # were not pruned, so a filter method's classifier still reads 0.
    pruned = {n: 1.0 - float(m.float().mean()) for n, m in result.masks.items()}
    structural, _ = get_pruner(tc.method).removes(tc.settings)
    removed = _removed_filters(dense, result.kept_channels) if structural else {}
    return TrialOutcome(metrics, masks, dict(result.kept_channels), encoded, per_layer,
                        _effective_ratios(tc.ratios, dense, result.kept_channels, pruned), removed,
                        list(result.notes))


def _removed_filters(dense, kept_channels) -> dict[str, float]:
    return {name: 1.0 - len(kept_channels[name]) / module.weight.shape[0] if name in kept_channels else 0.0
            for name, module in prunable_layers(dense).items()}


def evaluate_pruned(model, data: DatasetBundle, norm, recalibrate, device) -> float:
    """Validation accuracy of the pruned model before any fine-tuning (a cheap fidelity, and
    the article's "drop before fine-tuning"). Removing filters shifts every later activation,
    so a structural result is scored on a copy whose BatchNorm statistics were re-estimated:
    here, where nothing trains afterwards, recalibration is what the evaluation uses. The
    model that goes on to fine-tuning is left as it was."""
    if recalibrate is not None:
        model = copy.deepcopy(model)
        recalibrate(model)
    return evaluate(model, data.val, norm, device=device)


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


def pruning_context(tc: TrialConfig, data: DatasetBundle, baseline: Baseline, example: torch.Tensor,
                    recalibrate, retrain, retrain_from, device: str = "cpu") -> PruneContext:
    """What a pruner may use, the same for a trial and a screen (search.screening, which passes
    retrain functions that refuse): unaugmented training batches in a seeded order, the
    baseline's rewind points and step count, BatchNorm re-estimation."""
    recipe = baseline.spec
    norm = normalizer(data, False)
    return PruneContext(
        example_input=example,
        batches=lambda: batches(data.train, tc.batch_size, norm, torch.Generator().manual_seed(tc.seed), device),
        retrain=retrain,
        retrain_from=retrain_from,
        baseline_steps=total_steps(len(data.train), recipe.batch_size, recipe.epochs),
        rewind_states=dict(baseline.rewind_states),
        recalibrate_bn=recalibrate,
    )


def int8_for_storage(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Rounds every prunable weight to int8 in place: (the per-channel scales, the masks of what
    is stored). Rounding can send a tiny kept weight to 0, so the masks are re-read from the
    weights rather than carried over from the pruning."""
    names = [f"{n}.weight" for n in prunable_layers(model)]
    scales = quantize_int8_(model, names)
    params = dict(model.named_parameters())
    return scales, {n: params[n].detach() != 0 for n in names}
