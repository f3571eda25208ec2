"""A contract every sampler choice (`--sampler`) keeps, driven through Optuna's ask/tell with the
product's own space (no Ray): every config is valid for its method, the same seed replays the
same configs, and a sampler rebuilt for a resume does not replay the configs before it."""
from __future__ import annotations

import optuna
import pytest
import torch

from search.config import SAMPLERS, SearchConfig
from search.space import define_space, make_spec
from search.tune import make_sampler
from trainables.models import build_model
from trainables.trial_config import SPARSITY_PREFIX

optuna.logging.set_verbosity(optuna.logging.WARNING)
N = 16


def configs(sampler_name: str, seed: int = 0, trials_before: int = 0) -> list[dict]:
    cfg = SearchConfig(sampler=sampler_name, seed=seed, budget=N,
                       magnitude_scope=("layer", "global", "lamp", "erk"))
    spec = make_spec(cfg, build_model("simplecnn", 1, 10, 8), torch.randn(1, 1, 8, 8))
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=make_sampler(cfg, trials_before=trials_before))
    out = []
    for i in range(N):
        trial = study.ask()
        config = {**define_space(spec, trial), **trial.params}
        out.append(config)
        # Feedback with a trade-off, so model-based samplers leave their start-up phase.
        ratios = [v for k, v in config.items() if k.startswith(SPARSITY_PREFIX)]
        cost = 1.0 - (sum(ratios) / len(ratios) if ratios else config.get("global_sparsity", 0.0))
        study.tell(trial, [cost * 0.9 + 0.01 * (i % 3), cost])
    return out, spec


@pytest.mark.parametrize("sampler_name", SAMPLERS)
def test_every_config_is_valid_for_its_method(sampler_name):
    cfgs, spec = configs(sampler_name)
    bounds = {layer.name: layer for layer in spec.layers}
    for config in cfgs:
        assert config["method"] in spec.methods
        lo, hi = dict(spec.ranges)["finetune_lr"]
        assert lo <= config["finetune_lr"] <= hi
        for key, value in config.items():
            if key.startswith(SPARSITY_PREFIX):
                layer = bounds[key[len(SPARSITY_PREFIX):]]
                assert layer.lo <= value <= layer.hi, (key, value)
        if config["method"] == "taylor":
            assert isinstance(config["taylor_batches"], int)
    assert len({c["method"] for c in cfgs}) >= 3  # the sampler explores methods, not one corner


@pytest.mark.parametrize("sampler_name", SAMPLERS)
def test_same_seed_same_configs_and_a_resumed_sampler_does_not_replay(sampler_name):
    first, _ = configs(sampler_name, seed=3)
    again, _ = configs(sampler_name, seed=3)
    resumed, _ = configs(sampler_name, seed=3, trials_before=N)
    assert first == again
    assert not any(c in first for c in resumed)
