"""Cheap screening: a candidate's score is its pruned model before any fine-tune (BatchNorm
recalibrated), at the size the full trial will store; methods whose pruning trains are left out;
the choice is the screened front; screening never enqueues more trials than asked."""
from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from search import screening
from search.config import load_config
from search.screening import Screened
from search.space import make_spec
from tests.trainables.helpers import small_digits
from trainables.baseline import BaselineSpec, get_baseline, normalizer
from trainables.data import Split
from trainables.trial import run_trial
from trainables.trial_config import TrialConfig

SPEC = BaselineSpec("simplecnn", epochs=2, lr=0.05, batch_size=64, seed=0, augment=False, rewind_iters=(0,))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    data = small_digits()
    baseline = get_baseline(SPEC, data, tmp_path_factory.mktemp("cache"))
    return data, baseline


def _spec(data, baseline, *flags):
    cfg = load_config(["--finetune-epochs", "1", *flags])
    model = baseline.build("simplecnn", data)
    return make_spec(cfg, model, normalizer(data, False)(data.val.x[:1]))


def _val(data):
    return Split(data.val.x[:screening.SCREEN_VAL_IMAGES], data.val.y[:screening.SCREEN_VAL_IMAGES])


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_score_is_the_pruned_model_before_fine_tuning_at_the_size_the_trial_stores(setup, quantize):
    data, baseline = setup
    before = copy.deepcopy(baseline.state)
    config = {"method": "magnitude", "magnitude_scope": "global", "global_sparsity": 0.95, "model": "simplecnn",
              "finetune_epochs": 1, "batch_size": 64, "seed": 0, "augment": False, "latency_batch": 1,
              "finetune_lr": 0.01, "quantize": quantize}
    tc = TrialConfig.from_flat(config)
    acc, size = screening.score(tc, data, baseline, _val(data))
    trial = run_trial(tc, data, baseline)
    if quantize == "none":  # masks decide the size; the fine-tune keeps them
        assert size == trial.metrics["size_bytes"]
    else:  # int8 rounding may zero a few other weights after the fine-tune: within 1%
        assert abs(size - trial.metrics["size_bytes"]) <= 0.01 * trial.metrics["size_bytes"]
    # No fine-tune in the score: the fine-tune's settings change nothing, and 95% of the weights
    # gone costs accuracy that only a fine-tune would win back.
    longer = TrialConfig.from_flat({**config, "finetune_epochs": 3, "finetune_lr": 0.05})
    assert screening.score(longer, data, baseline, _val(data)) == (acc, size)
    assert acc < baseline.metrics["val_acc"] - 0.02
    assert all(torch.equal(before[k], baseline.state[k]) for k in before)  # the baseline is untouched


def test_score_recalibrates_batchnorm(setup, monkeypatch):
    data, baseline = setup
    calls = []
    real = screening.recalibrate_bn
    monkeypatch.setattr(screening, "recalibrate_bn", lambda *a, **k: (calls.append(1), real(*a, **k)))
    tc = TrialConfig.from_flat({"method": "fpgm", "model": "simplecnn", "finetune_epochs": 1, "batch_size": 64,
                                "seed": 0, "augment": False, "latency_batch": 1, "finetune_lr": 0.01,
                                "quantize": "none", "sparsity.conv1": 0.5, "sparsity.conv2": 0.5,
                                "sparsity.fc1": 0.5})
    acc_recal, _ = screening.score(tc, data, baseline, _val(data))
    monkeypatch.setattr(screening, "recalibrate_bn", lambda *a, **k: None)
    acc_plain, _ = screening.score(tc, data, baseline, _val(data))
    assert calls and acc_recal != acc_plain  # removing half the filters shifts the statistics


def test_screen_skips_methods_whose_pruning_trains_and_scores_the_others(setup):
    data, baseline = setup
    spec = _spec(data, baseline, "--methods", "magnitude,lottery", "--lottery-rounds", "2,2",
                 "--lottery-rewind", "0", "--lottery-retrain", "full")
    drawn = screening.sample_candidates(spec, 12, seed=3)
    scored = screening.screen(spec, data, baseline, 12, seed=3)
    assert {c["method"] for _, c in drawn} == {"magnitude", "lottery"}
    assert {s.method for s in scored} == {"magnitude"}
    assert len(scored) == sum(c["method"] == "magnitude" for _, c in drawn)
    assert all(0.0 <= s.val_acc <= 1.0 and s.size_bytes > 0 for s in scored)


def test_candidates_replay_exactly_through_the_space(setup):
    """An enqueued candidate's params give the same trial config when the space replays them."""
    import optuna

    data, baseline = setup
    spec = _spec(data, baseline, "--methods", "magnitude,taylor,fpgm")
    for params, config in screening.sample_candidates(spec, 6, seed=1):
        study = optuna.create_study(directions=["maximize", "minimize"])
        study.enqueue_trial(params)
        trial = study.ask()
        fixed = screening.define_space(spec, trial)
        assert {**fixed, **trial.params} == config


def _cand(acc, size):
    return Screened({"x": acc, "y": size}, "magnitude", acc, size)


def test_select_takes_whole_fronts_in_order_then_thins_along_size():
    front = [_cand(0.9, 100), _cand(0.8, 50), _cand(0.7, 10)]
    second = [_cand(0.85, 120), _cand(0.6, 60)]
    assert screening.select(front + second, 3) == sorted(front, key=lambda c: c.size_bytes)
    assert set(map(id, screening.select(front + second, 5))) == set(map(id, front + second))
    two = screening.select(front + second, 2)
    assert [c.size_bytes for c in two] == [10, 100]  # the ends of the front: the whole size axis


@given(st.lists(st.tuples(st.floats(0, 1), st.floats(1, 1e6)), max_size=30), st.integers(0, 40))
def test_select_never_returns_more_than_asked(points, keep):
    chosen = screening.select([_cand(a, s) for a, s in points], keep)
    assert len(chosen) == min(keep, len(points))


@given(st.integers(1, 500), st.integers(0, 500), st.integers(0, 500))
def test_screening_never_enqueues_more_than_asked_or_the_budget_allows(budget, screen_keep, enqueued):
    n = screening.keep_count(budget, screen_keep, enqueued)
    assert 0 <= n <= (screen_keep or max(1, budget // 4))
    assert enqueued + n <= max(enqueued, budget * 3 // 4)


def test_rank_correlation_pairs_screened_candidates_with_their_finished_trials():
    import optuna

    study = optuna.create_study(directions=["maximize", "minimize"])
    screened = []
    for i, (screen_acc, tuned_acc) in enumerate([(0.1, 0.5), (0.2, 0.6), (0.3, 0.7), (0.4, 0.65)]):
        params = {"global_sparsity": 0.1 * i + 0.05}
        screened.append({"params": params, "val_acc": screen_acc})
        study.enqueue_trial(params)
        t = study.ask()
        t.suggest_float("global_sparsity", 0.0, 1.0)
        study.tell(t, [tuned_acc, 1.0])
    t = study.ask()  # a sampler trial: not screened, not paired
    t.suggest_float("global_sparsity", 0.0, 1.0)
    study.tell(t, [0.0, 1.0])
    rho, pairs = screening.rank_correlation(screened, study.trials)
    assert pairs == 4 and rho == pytest.approx(0.8)
