"""Each setting is declared once (pruners/<method>.py, trainables.trial_config) and everything
else derives from that declaration: the SearchConfig field and CLI flag, validation, the Optuna
space, the trial's typed settings and its MLflow params. These tests tie those together."""
from __future__ import annotations

from dataclasses import fields

import optuna
import pytest
import torch

from pruners.registry import PRUNERS, get_pruner
from pruners.settings import Interval, MethodSettings, setting
from search.config import SEARCHED, ConfigError, SearchConfig, load_config, searched_fields, setting_groups
from search.space import define_space, make_spec
from trainables.models import build_model
from trainables.trial_config import FinetuneSettings, TrialConfig

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_every_declared_setting_is_a_searched_config_field_with_a_flag():
    declared = {spec.name for owner in setting_groups().values() for spec in owner.specs()}
    config_fields = {f.name: f for f in fields(SearchConfig)}
    assert declared <= set(searched_fields())
    for name in declared:
        assert config_fields[name].default == SEARCHED[name].search  # the declared default range
    help_text = " ".join(a for action in __import__("search.config").config.build_parser()._actions
                         for a in action.option_strings)
    assert all(f"--{name.replace('_', '-')}" in help_text for name in declared)


@pytest.mark.parametrize("owner", sorted(setting_groups()))
def test_declared_defaults_are_accepted(owner):
    settings_type = setting_groups()[owner]
    instance = settings_type()
    for spec in settings_type.specs():
        assert spec.accepts(getattr(instance, spec.name)), spec.name
        assert all(spec.accepts(v) for v in spec.search), spec.name  # the default search range/choices


def test_from_values_coerces_strings_and_names_the_bad_setting():
    lottery = get_pruner("lottery").settings_type
    assert lottery.from_values({"lottery_rounds": "3", "lottery_rewind": "0.02", "other": "x"}) == \
        lottery(lottery_rounds=3, lottery_rewind=0.02)
    with pytest.raises(ValueError, match="'lottery_rounds'"):
        lottery.from_values({"lottery_rounds": "2.5"})
    with pytest.raises(ValueError, match="'lottery_rounds'"):
        lottery.from_values({"lottery_rounds": True})


def test_a_pruner_refuses_another_methods_settings():
    with pytest.raises(TypeError, match="TaylorSettings"):
        get_pruner("taylor")(torch.nn.Linear(2, 2), {}, FinetuneSettings(), None)


@pytest.mark.parametrize("method", sorted(PRUNERS))
def test_space_samples_each_setting_of_the_method_and_the_params_carry_it(method):
    """Over a study, every setting of the chosen method is sampled (or fixed) and reaches the
    trial's typed settings and its MLflow params with the sampled value; no other method's."""
    cfg = load_config(["--methods", method, "--magnitude-scope", "layer,global,lamp,erk"])
    model = build_model("simplecnn", 1, 10, 8)
    spec = make_spec(cfg, model, torch.zeros(1, 1, 8, 8))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    own = {s.name for s in get_pruner(method).settings_type.specs()}
    others = set(SEARCHED) - own - {s.name for s in FinetuneSettings.specs()}
    seen: set[str] = set()
    for _ in range(12):
        trial = study.ask()
        fixed = define_space(spec, trial)
        flat = {**trial.params, **fixed}
        tc = TrialConfig.from_flat(flat)
        params = tc.as_params()
        for name in own | {"finetune_lr"}:
            if name in flat:
                seen.add(name)
                typed = getattr(tc.settings if name in own else tc.finetune, name)
                assert typed == pytest.approx(flat[name]) and params[name] == typed
        assert not (others & set(params)), others & set(params)
        # Through MLflow every param is a string; reading them back gives the same config.
        assert TrialConfig.from_flat({k: str(v) for k, v in params.items()}) == tc
        study.tell(trial, [0.5, 0.5])
    assert seen == own | {"finetune_lr"}


def test_a_setting_outside_what_the_method_accepts_exits_before_anything_starts():
    for flag, value in (("--hybrid-filter-ratio", "0.92,0.95"), ("--taylor-batches", "0,3"),
                        ("--magnitude-scope", "layer,lamb"), ("--finetune-lr", "0,0.1"),
                        ("--lottery-rewind", "0,-0.5"), ("--lottery-rewind", "0,1"),
                        ("--quantize", "none,int4"), ("--taylor-granularity", "channel"),
                        ("--lottery-retrain", "long"), ("--lottery-control", "shuffle"),
                        ("--hybrid-quant", "int8")):
        with pytest.raises(ConfigError, match=flag):
            load_config([flag, value])


def test_settings_declaration_checks_itself():
    with pytest.raises(ValueError, match="accepted"):
        setting(1.0, search=(0.0, 1.0), help="no accepted interval")
    with pytest.raises(ValueError, match="kind"):
        setting(1.0, search=(0.0, 1.0), help="bad kind", kind="complex", accepted=Interval(0))

    class Probe(MethodSettings):
        pass
    assert Probe.specs() == () and Probe().uses_layer_ratios()


def test_a_conditional_setting_is_neither_sampled_nor_recorded_when_its_condition_fails():
    """global_sparsity applies only to the global allocations (its `when`): a layer-scope trial
    neither samples nor logs it, and takes per-layer ratios instead."""
    cfg = load_config(["--methods", "magnitude", "--magnitude-scope", "layer,lamp"])
    spec = make_spec(cfg, build_model("simplecnn", 1, 10, 8), torch.zeros(1, 1, 8, 8))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=1))
    scopes = set()
    for _ in range(10):
        trial = study.ask()
        flat = {**define_space(spec, trial), **trial.params}
        tc = TrialConfig.from_flat(flat)
        scopes.add(tc.settings.magnitude_scope)
        layer_scope = tc.settings.magnitude_scope == "layer"
        assert ("global_sparsity" in flat) != layer_scope
        assert ("global_sparsity" in tc.as_params()) != layer_scope
        assert bool(tc.ratios) == layer_scope
        study.tell(trial, [0.5, 0.5])
    assert scopes == {"layer", "lamp"}


def test_rewind_fractions_become_the_iterations_the_baseline_keeps():
    from search.config import rewind_points
    from trainables.loops import total_steps

    cfg = load_config(["--dataset", "digits", "--lottery-rewind", "0.005,0.02,0.05", "--baseline-epochs", "30"])
    steps = total_steps(1000, cfg.batch_size, 30)  # 8 batches x 30 epochs = 240
    assert rewind_points(cfg, 1000) == (0, round(0.005 * steps), round(0.02 * steps), round(0.05 * steps))
    assert rewind_points(load_config(["--methods", "magnitude"]), 1000) == (0,)  # no lottery, only the init
