"""The search space, driven directly through Optuna's ask interface (no Ray): every ratio stays in
its layer's bounds, the depth schedule expands as documented, and the space function pickles."""
from __future__ import annotations

import pickle

import optuna
import pytest
import torch

from pruners.registry import get_pruner
from search.config import SearchConfig
from search.space import LayerBounds, define_space, expand_schedule, layer_bounds, make_spec, space_fn
from trainables.models import build_model
from trainables.trial_config import SPARSITY_PREFIX

optuna.logging.set_verbosity(optuna.logging.WARNING)
METHODS = ("magnitude", "taylor", "fpgm", "lottery", "hybrid")


def spec_for(model_name: str, space: str = "auto", **overrides):
    cfg = SearchConfig(**{"model": model_name, "space": space, "methods": METHODS, **overrides})
    return make_spec(cfg, build_model(model_name, 1, 10, 8), torch.randn(1, 1, 8, 8))


def sampled_configs(spec, sampler, n: int):
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    for i in range(n):
        trial = study.ask()
        config = {**define_space(spec, trial), **trial.params}
        yield config
        # Some feedback so TPE leaves its startup phase and samples from its model.
        study.tell(trial, [sum(v for k, v in config.items() if k.startswith(SPARSITY_PREFIX)), float(i)])


@pytest.mark.parametrize("space", ["per-layer", "schedule", "family"])
@pytest.mark.parametrize("sampler", [optuna.samplers.RandomSampler, optuna.samplers.TPESampler])
def test_every_ratio_stays_inside_its_layer_bounds(space, sampler):
    spec = spec_for("resnet20", space)
    bounds = {layer.name: layer for layer in spec.layers}
    seen = set()
    for config in sampled_configs(spec, sampler(seed=0), 30):
        ratios = {k[len(SPARSITY_PREFIX):]: v for k, v in config.items() if k.startswith(SPARSITY_PREFIX)}
        if config.get("magnitude_scope") == "global":
            assert not ratios and 0.2 <= config["global_sparsity"] <= 0.95
            continue
        filters = get_pruner(config["method"]).ratios_are_filters(config)  # fpgm, taylor per filter
        expected = {n for n, b in bounds.items() if not filters or b.kind != "classifier"}
        assert set(ratios) == expected  # every layer the method prunes gets a ratio; filter ratios: no classifier
        for name, ratio in ratios.items():
            assert bounds[name].lo <= ratio <= bounds[name].hi, (name, ratio)
        seen.add(config["method"])
        assert config["space"] == space
    assert len(seen) >= 3


def test_schedule_expansion_is_monotone_and_hits_its_ends():
    depths = [0.0, 0.1, 0.25, 0.5, 0.8, 1.0]
    layers = [LayerBounds(f"c{i}", "conv", 0.0, 1.0, d) for i, d in enumerate(depths)]
    layers.append(LayerBounds("fc", "fc", 0.0, 0.98))
    for start, end, curve in [(0.0, 0.9, 1.0), (0.1, 0.7, 0.5), (0.3, 0.3, 2.0), (0.05, 0.85, 3.0)]:
        ratios = expand_schedule(layers, start, end, curve)
        values = [ratios[f"c{i}"] for i in range(len(depths))]
        assert "fc" not in ratios
        assert values == sorted(values)
        assert values[0] == pytest.approx(start) and values[-1] == pytest.approx(end)


def test_schedule_clips_into_depth_aware_bounds():
    spec = spec_for("resnet56", "schedule")
    ratios = expand_schedule(spec.layers, 0.3, 0.9, 1.0)
    first, last = spec.layers[0], [layer for layer in spec.layers if layer.kind == "conv"][-1]
    assert ratios[first.name] == first.hi == 0.2 and ratios[last.name] == last.hi == 0.7
    assert all(layer.lo <= ratios[layer.name] <= layer.hi for layer in spec.layers if layer.name in ratios)


def test_schedule_samples_three_conv_params_and_fc_per_layer():
    spec = spec_for("resnet56", "schedule", methods=("taylor",), taylor_granularity=("weight",))
    trial = optuna.create_study().ask()
    config = define_space(spec, trial)
    assert {"schedule_start", "schedule_end", "schedule_curve"} <= set(trial.params)
    assert [k for k in trial.params if k.startswith(SPARSITY_PREFIX)] == [SPARSITY_PREFIX + "fc"]
    assert sum(k.startswith(SPARSITY_PREFIX) for k in config) == 57  # every conv, from the schedule


def test_filter_taylor_samples_like_fpgm_no_classifier_and_residual_groups_share_a_ratio():
    spec = spec_for("resnet20", "per-layer", methods=("taylor",), taylor_granularity=("filter",))
    trial = optuna.create_study().ask()
    config = define_space(spec, trial)
    classifier = [layer.name for layer in spec.layers if layer.kind == "classifier"]
    assert config["taylor_granularity"] == "filter" and SPARSITY_PREFIX + classifier[0] not in {**config, **trial.params}
    followers = [layer for layer in spec.layers if layer.follows is not None]
    assert followers
    for layer in followers:
        root = SPARSITY_PREFIX + layer.follows
        assert config[SPARSITY_PREFIX + layer.name] == {**config, **trial.params}[root]


def test_fpgm_never_samples_the_classifier():
    for space in ("per-layer", "schedule"):
        spec = spec_for("simplecnn", space, methods=("fpgm",))
        trial = optuna.create_study().ask()
        config = {**define_space(spec, trial), **trial.params}
        assert SPARSITY_PREFIX + "fc2" not in config and SPARSITY_PREFIX + "fc1" in config


def test_auto_picks_schedule_for_deep_models_only():
    assert spec_for("resnet56").schedule and not spec_for("simplecnn").schedule
    assert not spec_for("resnet56", "per-layer").schedule and spec_for("simplecnn", "schedule").schedule


def test_per_layer_bounds_follow_depth():
    cfg = SearchConfig(model="resnet20")
    layers = layer_bounds(build_model("resnet20", 1, 10, 8), cfg, torch.zeros(1, 1, 8, 8))
    convs = [layer for layer in layers if layer.kind in ("conv_early", "conv")]
    assert (convs[0].lo, convs[0].hi, convs[-1].hi) == (0.0, 0.2, 0.7)
    assert [layer.hi for layer in convs] == sorted(layer.hi for layer in convs)
    assert layers[-1].kind == "classifier" and layers[-1].depth is None


def test_space_function_pickles_and_samples_the_same_after():
    spec = spec_for("resnet56")
    fn = pickle.loads(pickle.dumps(space_fn(spec)))
    sampler = optuna.samplers.RandomSampler(seed=3)
    a = fn(optuna.create_study(sampler=sampler).ask())
    b = space_fn(spec)(optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3)).ask())
    assert a == b


def _coupled_groups(spec):
    groups: dict[str, list[str]] = {}
    for layer in spec.layers:
        if layer.follows is not None:
            groups.setdefault(layer.follows, [layer.follows]).append(layer.name)
    return groups


@pytest.mark.parametrize("space", ["per-layer", "schedule"])
def test_fpgm_samples_one_ratio_per_residual_group_and_members_follow_it(space):
    """On a ResNet a residual addition ties output channels together; FPGM removes them at the
    group root's ratio. The space samples only the root and gives every member that ratio."""
    spec = spec_for("resnet20", space, methods=("fpgm",))
    groups = _coupled_groups(spec)
    assert len(groups) == 3 and sum(len(m) for m in groups.values()) >= 9  # one stream per stage
    for config in sampled_configs(spec, optuna.samplers.RandomSampler(seed=3), 10):
        for root, members in groups.items():
            assert {config[SPARSITY_PREFIX + m] for m in members} == {config[SPARSITY_PREFIX + root]}
    if space == "per-layer":
        trial = optuna.create_study().ask()
        define_space(spec, trial)
        sampled = {k[len(SPARSITY_PREFIX):] for k in trial.params if k.startswith(SPARSITY_PREFIX)}
        followers = {m for members in groups.values() for m in members[1:]}
        assert sampled and not sampled & followers
        assert set(groups) <= sampled


def test_fpgm_pruned_resnet_keeps_the_ratio_the_space_gave_each_coupled_layer():
    from pruners.fpgm import fpgm_prune_
    from pruners.layers import prunable_layers

    spec = spec_for("resnet20", "per-layer", methods=("fpgm",))
    config = next(sampled_configs(spec, optuna.samplers.RandomSampler(seed=5), 1))
    ratios = {k[len(SPARSITY_PREFIX):]: v for k, v in config.items() if k.startswith(SPARSITY_PREFIX)}
    model = build_model("resnet20", 1, 10, 8)
    widths = {n: m.weight.shape[0] for n, m in prunable_layers(model).items()}
    kept = fpgm_prune_(model, ratios, torch.randn(1, 1, 8, 8))
    for name, ratio in ratios.items():
        expected = widths[name] - min(int(round(ratio * widths[name])), widths[name] - 1)
        assert len(kept[name]) == expected, name


def test_unstructured_methods_still_sample_every_layer_of_a_resnet():
    spec = spec_for("resnet20", "per-layer", methods=("magnitude",), magnitude_scope=("layer",))
    trial = optuna.create_study().ask()
    define_space(spec, trial)
    sampled = [k for k in trial.params if k.startswith(SPARSITY_PREFIX)]
    assert len(sampled) == len(spec.layers)
