"""Cheap screening, a second fidelity: score many configurations of the search's own space in
seconds each, by validation accuracy right after pruning (BatchNorm recalibrated on training
data, int8 applied when the candidate asks for it, no fine-tune) and their real encoded size,
then enqueue only the promising ones as full trials (`--screen N --screen-keep K`).

- Candidates come from `search.space.define_space` under a seeded random sampler, in a
  throwaway in-memory study: the very parameters a trial would get, so an enqueued candidate
  replays exactly.
- Promising = the best fronts of (screened accuracy up, size down) by non-dominated sorting; the
  last front that fits is thinned evenly along size, so the keepers cover the whole size axis.
- A method whose pruning itself trains (lottery retrains between rounds) cannot be scored in
  seconds; its candidates are skipped, and the sampler explores it as usual.
- After the search, `rank_correlation` says how well the screen predicted the fine-tuned
  accuracy of the trials it chose (Spearman), which is what justifies the fidelity at all.
"""
from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import optuna
import torch

from pruners.registry import get_pruner
from search.results.pareto import Point, dominates
from search.space import SpaceSpec, define_space
from trainables import compress
from trainables.baseline import Baseline, normalizer
from trainables.data import DatasetBundle, Split
from trainables.loops import evaluate, recalibrate_bn
from trainables.trial import int8_for_storage, pruning_context
from trainables.trial_config import TrialConfig

logger = logging.getLogger(__name__)

# The first N val images score a candidate: enough to rank configurations, and seconds each.
SCREEN_VAL_IMAGES = 2000


@dataclass(frozen=True)
class Screened:
    params: dict[str, Any]  # the Optuna params: what is enqueued
    method: str
    val_acc: float  # on the first SCREEN_VAL_IMAGES val images, before any fine-tune
    size_bytes: float


class _TrainsWhilePruning(Exception):
    """Raised by the screening context when a method asks to train: not a seconds-long score."""


def _no_training(*_args) -> None:
    raise _TrainsWhilePruning


def score(tc: TrialConfig, data: DatasetBundle, baseline: Baseline, val: Split) -> tuple[float, float]:
    """(val accuracy, encoded size in bytes) of the trial's pruned model before fine-tuning.
    Raises _TrainsWhilePruning for a method whose pruning trains."""
    norm = normalizer(data, False)
    dense = baseline.build(tc.model, data).eval()

    def recalibrate(model):
        recalibrate_bn(model, data.train, norm, seed=tc.seed)

    ctx = pruning_context(tc, data, baseline, norm(data.val.x[:1]), recalibrate, _no_training, _no_training)
    torch.manual_seed(tc.seed)
    result = get_pruner(tc.method)(copy.deepcopy(dense), tc.ratios, tc.settings, ctx)
    model, masks = result.model, dict(result.masks)
    scales = {}
    if tc.finetune.quantize == "int8":
        scales, masks = int8_for_storage(model)
    # Pruning (and int8) shifts every later activation; the score is for the model with its own
    # statistics, as the screen has no fine-tune to re-learn them.
    recalibrate(model)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    size = compress.size_bytes(compress.encode(state, masks, scales))
    return evaluate(model, val, norm), float(size)


def sample_candidates(spec: SpaceSpec, n: int, seed: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """n (Optuna params, full trial config) pairs drawn at random from the search's space."""
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        fixed = define_space(spec, trial)
        out.append((dict(trial.params), {**fixed, **trial.params}))
    return out


def screen(spec: SpaceSpec, data: DatasetBundle, baseline: Baseline, n: int, seed: int) -> list[Screened]:
    """Score n random candidates; the ones a method cannot score cheaply are left out."""
    val = Split(data.val.x[:SCREEN_VAL_IMAGES], data.val.y[:SCREEN_VAL_IMAGES])
    out: list[Screened] = []
    skipped: set[str] = set()
    start = time.perf_counter()
    for i, (params, config) in enumerate(sample_candidates(spec, n, seed), 1):
        tc = TrialConfig.from_flat(config)
        try:
            acc, size = score(tc, data, baseline, val)
        except _TrainsWhilePruning:
            skipped.add(tc.method)
            continue
        out.append(Screened(params, tc.method, acc, size))
        if i % 10 == 0 or i == n:
            logger.info(f"screening {i}/{n}: {len(out)} scored, {time.perf_counter() - start:.0f}s")
    if skipped:
        logger.info(f"screening: left {', '.join(sorted(skipped))} to the sampler (its pruning trains)")
    return out


def keep_count(budget: int, screen_keep: int, enqueued: int) -> int:
    """How many screened candidates become full trials: `screen_keep` (0 = a quarter of the
    budget), within the three quarters of the budget that may be enqueued at all (the rest is the
    sampler's), after the `enqueued` points of the default seeding."""
    return max(0, min(screen_keep or max(1, budget // 4), budget * 3 // 4 - enqueued))


def select(candidates: Sequence[Screened], keep: int) -> list[Screened]:
    """At most `keep` candidates: whole non-dominated fronts of (accuracy up, size down) in
    order, the last one thinned evenly along size."""
    chosen: list[Screened] = []
    rest = list(candidates)
    while rest and len(chosen) < keep:
        front = [c for c in rest if not any(_dominates(o, c) for o in rest)]
        rest = [c for c in rest if c not in front]
        room = keep - len(chosen)
        front.sort(key=lambda c: c.size_bytes)
        if len(front) > room:
            step = (len(front) - 1) / max(1, room - 1)
            front = [front[round(i * step)] for i in range(room)] if room > 1 else [front[len(front) // 2]]
        chosen += front
    return chosen


def _dominates(a: Screened, b: Screened) -> bool:
    return dominates(Point("a", a.val_acc, a.size_bytes), Point("b", b.val_acc, b.size_bytes))


def rank_correlation(screened: Sequence[dict[str, Any]], trials: Sequence[optuna.trial.FrozenTrial]) -> tuple[float, int]:
    """Spearman correlation between screened and fine-tuned val accuracy, over the finished
    trials whose params are a screened candidate's (NaN when fewer than 3 pairs)."""
    from scipy.stats import spearmanr

    by_params = {_key(s["params"]): s["val_acc"] for s in screened}
    pairs = [(by_params[_key(t.params)], t.values[0]) for t in trials
             if t.state == optuna.trial.TrialState.COMPLETE and t.values and _key(t.params) in by_params]
    if len(pairs) < 3:
        return float("nan"), len(pairs)
    rho = spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic
    return float(rho), len(pairs)


def _key(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, round(v, 9) if isinstance(v, float) else v) for k, v in params.items()))


def as_records(chosen: Sequence[Screened], candidates: Sequence[Screened]) -> dict[str, Any]:
    """What the search's run keeps: every scored candidate and which were enqueued."""
    picked = {id(c) for c in chosen}
    return {"val_images": SCREEN_VAL_IMAGES,
            "candidates": [{**asdict(c), "enqueued": id(c) in picked} for c in candidates]}
