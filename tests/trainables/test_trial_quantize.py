"""Trial-wide int8 for any method at its exact encoded size; BatchNorm recalibrated where it acts
(after int8, and on a structurally pruned model before its un-fine-tuned evaluation); lottery's
full retraining for the rest of the baseline's schedule."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from pruners.quantize import fake_quantize
from tests.trainables.helpers import CONSTANTS, SPEC, small_digits
from trainables import compress
from trainables import trial as trial_mod
from trainables.baseline import get_baseline, normalizer
from trainables.loops import evaluate, recalibrate_bn, total_steps, train
from trainables.models import build_model
from trainables.trial_config import TrialConfig

RATIOS = {"sparsity.conv1": 0.1, "sparsity.conv2": 0.5, "sparsity.fc1": 0.9, "sparsity.fc2": 0.3}
MAGNITUDE = {**CONSTANTS, "method": "magnitude", "magnitude_scope": "layer", **RATIOS}
PRUNABLE = ("conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight")


def run(config: dict, data, baseline):
    return trial_mod.run_trial(TrialConfig.from_flat(config), data, baseline)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    return get_baseline(SPEC, small_digits(), tmp_path_factory.mktemp("cache"))


def expected_int8_bytes(state: dict, masks: dict) -> int:
    """The encoding's size worked out by hand: every prunable weight as int8 values (dense,
    bitmask + values or CSR, whichever is smallest) + its shape + one fp32 scale per output
    channel; every other tensor as stored."""
    total = 0
    for name, t in state.items():
        if name not in PRUNABLE:
            total += t.numel() * t.element_size()
            continue
        rows, numel, nnz = t.shape[0], t.numel(), int(masks[name].sum())
        col_bytes = 2 if numel // rows <= 32767 else 4
        values = min(numel, (numel + 7) // 8 + nnz, nnz * (1 + col_bytes) + (rows + 1) * 4)
        total += values + 4 * t.dim() + 4 * rows
    return total


def test_int8_for_a_non_hybrid_method_stores_int8_at_the_exact_size(baseline):
    data = small_digits()
    fp32 = run({**MAGNITUDE, "quantize": "none"}, data, baseline)
    int8 = run({**MAGNITUDE, "quantize": "int8"}, data, baseline)
    state = compress.decode(int8.encoded)
    assert int8.metrics["size_bytes"] == expected_int8_bytes(state, int8.masks)
    assert int8.metrics["size_bytes"] == compress.size_bytes(int8.encoded)
    for name in PRUNABLE:
        assert int8.encoded[f"{name}::scale"].numel() == state[name].shape[0]
        assert any(k.startswith(f"{name}::") and v.dtype == torch.int8 for k, v in int8.encoded.items()), name
        torch.testing.assert_close(state[name], fake_quantize(state[name]), rtol=0, atol=0)  # on the grid
    # Pruning at equal ratios, the int8 model stores its weights in about a quarter of the bytes.
    assert int8.metrics["size_bytes"] < 0.45 * fp32.metrics["size_bytes"]
    assert int8.metrics["val_acc"] > 0.5


class Spy:
    """Wraps trial.recalibrate_bn: records the BatchNorm statistics before and after each call."""

    def __init__(self):
        self.calls: list[tuple[torch.nn.Module, dict, dict]] = []

    def __call__(self, model, *args, **kwargs):
        before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
        recalibrate_bn(model, *args, **kwargs)
        after = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
        self.calls.append((model, before, after))


def test_bn_recalibrated_after_int8_and_the_evaluation_and_stored_model_use_it(baseline, monkeypatch):
    spy = Spy()
    monkeypatch.setattr(trial_mod, "recalibrate_bn", spy)
    out = run({**MAGNITUDE, "quantize": "int8"}, small_digits(), baseline)
    assert len(spy.calls) == 1  # masked method: only after int8
    model, before, after = spy.calls[0]
    assert any(not torch.equal(before[k], after[k]) for k in before)  # it changed the statistics
    for k, v in after.items():  # ... and those are what is stored and evaluated
        assert torch.equal(out.encoded[k], v), k
    data = small_digits()
    norm = normalizer(data, False)
    assert out.metrics["val_acc"] == evaluate(model, data.val, norm)


def test_bn_recalibrated_on_a_structurally_pruned_model_before_its_unfinetuned_score(baseline, monkeypatch):
    spy = Spy()
    monkeypatch.setattr(trial_mod, "recalibrate_bn", spy)
    config = {**CONSTANTS, "method": "fpgm", "quantize": "none",
              **{k: v for k, v in RATIOS.items() if k != "sparsity.fc2"}}
    out = run(config, small_digits(), baseline)
    assert len(spy.calls) == 1
    model, before, after = spy.calls[0]
    assert model.conv2.out_channels < baseline.state["conv2.weight"].shape[0]  # after the surgery
    assert any(not torch.equal(before[k], after[k]) for k in before)
    data = small_digits()
    norm = normalizer(data, False)
    assert out.metrics["prune_val_acc"] == evaluate(model, data.val, norm)  # the score used them
    model.load_state_dict({**model.state_dict(), **before})
    stale = evaluate(model, data.val, norm)
    assert stale != out.metrics["prune_val_acc"]


def test_masked_result_is_scored_unfinetuned_without_recalibration(baseline, monkeypatch):
    spy = Spy()
    monkeypatch.setattr(trial_mod, "recalibrate_bn", spy)
    out = run({**MAGNITUDE, "quantize": "none"}, small_digits(), baseline)
    assert spy.calls == [] and 0 < out.metrics["prune_val_acc"] <= 1


def test_hybrid_qat_fine_tunes_on_the_int8_grid_and_differs_from_ptq(baseline):
    config = {**CONSTANTS, "method": "hybrid", "quantize": "int8", "hybrid_filter_ratio": 0.25,
              "hybrid_temperature": 4.0, "hybrid_alpha": 0.5, **RATIOS}
    ptq = run({**config, "hybrid_quant": "ptq"}, small_digits(), baseline)
    qat = run({**config, "hybrid_quant": "qat"}, small_digits(), baseline)
    assert ptq.kept_channels == qat.kept_channels
    assert any(not torch.equal(ptq.encoded[k], qat.encoded[k]) for k in ptq.encoded if "::values" in k)
    for out in (ptq, qat):
        assert out.metrics["size_bytes"] == compress.size_bytes(out.encoded)


@pytest.fixture(scope="module", params=["cosine", "onecycle"])
def scheduled_baseline(request, tmp_path_factory):
    """Baselines trained with either schedule: retraining must follow the baseline's own."""
    spec = dataclasses.replace(SPEC, schedule=request.param)
    return spec, get_baseline(spec, small_digits(), tmp_path_factory.mktemp("cache"))


def test_lottery_full_retraining_runs_t_minus_k_steps_a_round_and_no_fine_tune(scheduled_baseline, monkeypatch):
    spec, baseline = scheduled_baseline
    lrs: list[float] = []  # the learning rate of every optimizer step
    real_step = torch.optim.SGD.step

    def step(self, *a, **k):
        lrs.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    data = small_digits()
    T = total_steps(len(data.train), spec.batch_size, spec.epochs)
    k = 5  # a rewind point the baseline keeps
    base = {**CONSTANTS, "method": "lottery", "lottery_rounds": 2, "lottery_rewind": k / T, **RATIOS}
    run({**base, "lottery_retrain": "full"}, data, baseline)
    full = lrs.copy()
    assert len(full) == 2 * (T - k)
    # The baseline's own learning rates from step k on (its lr and schedule, not the fine-tune's).
    lrs.clear()
    train(build_model("simplecnn", 1, 10, 8), data.train, normalizer(data, False), epochs=spec.epochs,
          lr=spec.lr, batch_size=spec.batch_size, seed=0, schedule=spec.schedule)
    assert full[: T - k] == pytest.approx(lrs[k:], rel=1e-12, abs=0)
    assert full[T - k:] == pytest.approx(lrs[k:], rel=1e-12, abs=0)
    lrs.clear()
    run({**base, "lottery_retrain": "finetune"}, data, baseline)
    fine = total_steps(len(data.train), CONSTANTS["batch_size"], CONSTANTS["finetune_epochs"])
    assert len(lrs) == 2 * fine  # round 1's and the trial's fine-tune: the cheap variant


def test_int8_rounding_zeros_are_stored_but_not_reported_as_pruning(baseline):
    config = {**CONSTANTS, "method": "fpgm", "quantize": "int8",
              **{k: v for k, v in RATIOS.items() if k != "sparsity.fc2"}}
    out = run(config, small_digits(), baseline)
    assert out.effective_ratios["fc2"] == 0.0  # fpgm never prunes the classifier
    assert set(out.layer_sparsity) == set(PRUNABLE)  # what is stored: int8 values, zeros included
    assert out.metrics["size_bytes"] == compress.size_bytes(out.encoded)
