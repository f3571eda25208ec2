"""The anchored space: a one-shot allocation at a sampled target, one offset per layer. Offsets of
0 must reproduce the one-shot exactly (that is what makes it an anchor); offsets move each
layer within its depth-shaped prior, never past [0, MAX_RATIO]."""
from __future__ import annotations

import optuna
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pruners.base import PruneContext
from pruners.layers import prunable_layers
from pruners.registry import get_pruner
from search.anchored import ALLOCATIONS, MAX_RATIO, OFFSET_PREFIX, anchor_ratios, moved, offset_bounds
from search.config import SearchConfig
from search.space import define_space, make_spec
from trainables.models import build_model
from trainables.trial_config import SPARSITY_PREFIX


def _model():
    torch.manual_seed(0)
    return build_model("simplecnn", 1, 10, 8)


def _ctx(example):
    return PruneContext(example_input=example, batches=lambda: iter(()), retrain=None, retrain_from=None,
                        baseline_steps=0, rewind_states={}, recalibrate_bn=lambda m: None)


@pytest.mark.parametrize("allocation", ALLOCATIONS)
@pytest.mark.parametrize("target", [0.3, 0.8, 0.95])
def test_offsets_of_zero_reproduce_the_one_shot_masks_exactly(allocation, target):
    model, example = _model(), torch.randn(1, 1, 8, 8)
    weights = {name: m.weight for name, m in prunable_layers(model).items()}
    ratios = anchor_ratios(weights, allocation, target)
    magnitude = get_pruner("magnitude")
    one_shot = magnitude(model, {n: 0.0 for n in weights},
                         {"magnitude_scope": allocation, "global_sparsity": target}, _ctx(example))
    layer_wise = magnitude(model, moved(ratios, {}), {"magnitude_scope": "layer"}, _ctx(example))
    assert one_shot.masks.keys() == layer_wise.masks.keys()
    for key in one_shot.masks:
        assert torch.equal(one_shot.masks[key], layer_wise.masks[key]), key


def test_the_allocations_differ_so_the_choice_matters():
    weights = {name: m.weight for name, m in prunable_layers(_model()).items()}
    by_allocation = {a: anchor_ratios(weights, a, 0.9) for a in ALLOCATIONS}
    assert len({tuple(round(r, 6) for r in ratios.values()) for ratios in by_allocation.values()}) == 3


@settings(max_examples=60, deadline=None)
@given(anchor=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.floats(0, 0.999), min_size=1),
       offset=st.floats(-1, 1))
def test_moved_ratios_stay_in_range_and_follow_the_offset(anchor, offset):
    out = moved(anchor, {name: offset for name in anchor})
    for name, r in out.items():
        ceiling = max(MAX_RATIO, anchor[name])  # an offset never raises a layer past MAX_RATIO or its anchor
        assert 0.0 <= r <= ceiling
        assert r == pytest.approx(min(max(anchor[name] + offset, 0.0), ceiling))
    assert moved(anchor, {}) == anchor


def test_the_prior_lets_conservative_layers_move_mostly_down_and_fc_mostly_up():
    early, fc, conv = offset_bounds("conv_early", 0.2), offset_bounds("fc", 0.2), offset_bounds("conv", 0.2)
    assert early[0] < 0 < early[1] < -early[0] and 0 < -fc[0] < fc[1] and conv == (-0.2, 0.2)
    assert offset_bounds("classifier", 0.2) == early


def test_the_space_samples_a_target_an_allocation_and_one_offset_per_layer():
    cfg = SearchConfig(space="anchored", methods=("magnitude", "fpgm"), magnitude_scope=("layer",))
    spec = make_spec(cfg, _model(), torch.randn(1, 1, 8, 8))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(0))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        config = {**define_space(spec, trial), **trial.params}
        layers = {"magnitude": {"conv1", "conv2", "fc1", "fc2"}, "fpgm": {"conv1", "conv2", "fc1"}}[config["method"]]
        assert {k[len(SPARSITY_PREFIX):] for k in config if k.startswith(SPARSITY_PREFIX)} == layers
        assert {k[len(OFFSET_PREFIX):] for k in trial.params if k.startswith(OFFSET_PREFIX)} == layers
        assert not [k for k in trial.params if k.startswith(SPARSITY_PREFIX)]  # ratios are derived, not sampled
        assert config["space"] == "anchored" and 0.2 <= config["anchor_target"] <= 0.98
        seen.add(config["anchor_allocation"])
        study.tell(trial, [0.5, 0.5])
    assert seen == set(ALLOCATIONS)


def test_a_trial_with_zero_offsets_gets_the_anchor_ratios():
    cfg = SearchConfig(space="anchored", methods=("magnitude",), magnitude_scope=("layer",), anchor_allocation=("lamp",))
    model = _model()
    spec = make_spec(cfg, model, torch.randn(1, 1, 8, 8))
    params = {"anchor_target": 0.9, "finetune_lr": 0.01, "quantize": "none",
              **{OFFSET_PREFIX + n: 0.0 for n in ("conv1", "conv2", "fc1", "fc2")}}
    config = define_space(spec, optuna.trial.FixedTrial(params))
    weights = {name: m.weight for name, m in prunable_layers(model).items()}
    expected = anchor_ratios(weights, "lamp", 0.9)
    assert {n: config[SPARSITY_PREFIX + n] for n in expected} == pytest.approx(expected)
    assert config["anchor_allocation"] == "lamp"  # one choice: a constant, not an Optuna param


def test_unknown_allocation_is_one_line_naming_the_flag():
    from search.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"--anchor-allocation: 'snip' is not accepted; expected a comma-separated "
                                          r"subset of global, lamp, erk"):
        load_config(["--space", "anchored", "--anchor-allocation", "global,snip"])


@pytest.mark.slow
def test_an_anchored_search_runs_end_to_end_and_records_ratios_and_offsets(tmp_path, ray_session):
    from mlflow_config import tracking
    from tests.conftest import run_small_search

    done = run_small_search(tmp_path, "anchored", 4, "--space", "anchored", "--methods", "magnitude,fpgm",
                            "--magnitude-scope", "layer", "--enqueue-recipe", "false")
    assert done.exit_code == 0
    runs = tracking.child_runs(tracking.client(done.tracking_uri), done.experiment_id, done.parent_run_id)
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert len(finished) == 4
    for run in finished:
        params = run.data.params
        assert params["space"] == "anchored" and params["anchor_allocation"] in ALLOCATIONS
        assert any(k.startswith(SPARSITY_PREFIX) for k in params) and any(k.startswith(OFFSET_PREFIX) for k in params)
