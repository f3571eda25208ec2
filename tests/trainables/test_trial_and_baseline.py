"""One real trial on digits: exact per-layer sparsity, honest counts; the baseline cache."""
from __future__ import annotations

import logging

import pytest
import torch

from tests.trainables.helpers import CONSTANTS, SPEC, small_digits
from trainables import compress
from trainables.baseline import get_baseline
from trainables.data import DataError
from trainables.trial import run_trial
from trainables.trial_config import TrialConfig


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    return get_baseline(SPEC, small_digits(), tmp_path_factory.mktemp("cache"))


def test_magnitude_trial_hits_each_requested_ratio_to_one_weight(baseline):
    ratios = {"conv1": 0.13, "conv2": 0.61, "fc1": 0.947, "fc2": 0.33}
    config = {**CONSTANTS, "method": "magnitude", "magnitude_scope": "layer",
              **{f"sparsity.{k}": v for k, v in ratios.items()}}
    out = run_trial(TrialConfig.from_flat(config), small_digits(), baseline)
    dense = baseline.build("simplecnn", small_digits())
    layers = dict(dense.named_modules())
    for name, ratio in ratios.items():
        n = layers[name].weight.numel()
        assert int((~out.masks[f"{name}.weight"]).sum()) == round(ratio * n)
    total_pruned = sum(int((~m).sum()) for m in out.masks.values())
    assert out.metrics["params"] - out.metrics["nonzero_params"] == total_pruned
    assert out.metrics["size_bytes"] == compress.size_bytes(out.encoded)
    assert out.metrics["size_ratio"] < 0.3
    for key in ("val_acc", "test_acc", "flops", "latency_ms", "cost_s"):
        assert out.metrics[key] > 0


def test_trial_is_reproducible_for_a_seed(baseline):
    config = {**CONSTANTS, "method": "taylor", "taylor_batches": 2, "sparsity.conv1": 0.1, "sparsity.conv2": 0.5,
              "sparsity.fc1": 0.9, "sparsity.fc2": 0.3}
    tc = TrialConfig.from_flat(config)
    a, b = run_trial(tc, small_digits(), baseline), run_trial(tc, small_digits(), baseline)
    assert a.metrics["val_acc"] == b.metrics["val_acc"]
    for k in a.encoded:
        assert torch.equal(a.encoded[k], b.encoded[k])


def test_second_request_reuses_the_cached_baseline_without_training(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="trainables")
    first = get_baseline(SPEC, small_digits(), tmp_path)
    import trainables.baseline as mod

    monkeypatch.setattr(mod, "train", lambda *a, **k: pytest.fail("retrained a cached baseline"))
    second = get_baseline(SPEC, small_digits(), tmp_path)
    assert second.cached and not first.cached
    assert any("reusing cached" in m for m in caplog.messages)
    assert set(second.rewind_states) == {0, 5}
    for k, v in first.state.items():
        assert torch.equal(v, second.state[k])


def test_corrupt_baseline_cache_is_one_clear_error(tmp_path):
    path = tmp_path / "baselines" / f"{SPEC.key(small_digits())}.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="corrupt baseline cache .* delete it"):
        get_baseline(SPEC, small_digits(), tmp_path)


def test_rewind_point_zero_is_the_initialization(baseline):
    torch.manual_seed(SPEC.seed)
    from trainables.models import build_model

    init = build_model("simplecnn", 1, 10, 8).state_dict()
    for k, v in init.items():
        assert torch.equal(baseline.rewind_states[0][k], v), k


def test_cache_that_loads_but_lacks_keys_is_named_for_deletion(tmp_path):
    path = tmp_path / "baselines" / f"{SPEC.key(small_digits())}.pt"
    path.parent.mkdir(parents=True)
    torch.save({"state": {}, "metrics": {"val_acc": 0.5}}, path)  # a valid file, not a baseline
    with pytest.raises(DataError, match=r"corrupt baseline cache .*missing rewind_states, spec, metrics.test_acc.*"
                                        r"delete it to retrain"):
        get_baseline(SPEC, small_digits(), tmp_path)


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_an_interrupted_baseline_continues_to_the_same_weights(tmp_path, caplog, schedule):
    """The training is saved after every epoch; a run stopped mid-way and started again ends with
    exactly the weights of a run never stopped (and takes up where it stopped)."""
    import dataclasses

    from trainables import loops

    spec = dataclasses.replace(SPEC, epochs=3, augment=True, rewind_iters=(0, 2), schedule=schedule)
    data = small_digits(200)
    whole = get_baseline(spec, data, tmp_path / "whole")

    real_train, stopped = loops.train, tmp_path / "stopped"

    def stop_after_two_epochs(*args, on_epoch=None, **kwargs):
        def report(epoch, epochs, loss):
            on_epoch(epoch, epochs, loss)
            if epoch == 2:
                raise KeyboardInterrupt  # the session ends in epoch 2's report: epoch 1 is the last saved

        return real_train(*args, on_epoch=report, **kwargs)

    import trainables.baseline as baseline_module

    baseline_module.train = stop_after_two_epochs
    try:
        with pytest.raises(KeyboardInterrupt):
            get_baseline(spec, data, stopped)
    finally:
        baseline_module.train = real_train
    assert list((stopped / "baselines").glob("*.partial.pt"))
    caplog.set_level("INFO", logger="trainables")
    again = get_baseline(spec, data, stopped)
    assert "continuing from epoch 1" in caplog.text and "epoch 2/3" in caplog.text and "epoch 1/3" not in caplog.text
    assert all(torch.equal(whole.state[k], again.state[k]) for k in whole.state)
    assert whole.rewind_states.keys() == again.rewind_states.keys() == {0, 2}
    assert all(torch.equal(whole.rewind_states[2][k], again.rewind_states[2][k]) for k in whole.state)
    assert not list((stopped / "baselines").glob("*.partial.pt"))  # the finished cache replaces it
