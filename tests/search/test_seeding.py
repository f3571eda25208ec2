"""The first trials of a search (search.seeding): the article's recipe is enqueued at the
high-compression end first, in int8 wherever the search may quantize, and each enqueued point
replays through the space exactly as a trial would get it."""
from __future__ import annotations

import optuna
import pytest
import torch

from search.config import SearchConfig
from search.seeding import initial_points
from search.space import define_space, make_spec, recipe_points
from trainables.models import build_model

optuna.logging.set_verbosity(optuna.logging.WARNING)
METHODS = ("magnitude", "taylor", "fpgm", "lottery", "hybrid")


def test_small_budgets_get_the_high_compression_end_of_the_recipe_in_int8():
    points = recipe_points(SearchConfig(methods=METHODS, budget=12))
    assert [p["global_sparsity"] for p in points] == [0.9, 0.8, 0.95]
    assert all(p["quantize"] == "int8" and p["method"] == "magnitude" and p["magnitude_scope"] == "global"
               for p in points)


def test_the_whole_recipe_at_large_budgets():
    sparsities = [p["global_sparsity"] for p in recipe_points(SearchConfig(methods=METHODS, budget=50))]
    assert sorted(sparsities) == [0.2, 0.5, 0.8, 0.9, 0.95]


@pytest.mark.parametrize("quantize", [("none",), ("int8",)])
def test_no_quantize_key_when_the_search_does_not_choose_it(quantize):
    # A fixed choice is a constant of the space, not an Optuna parameter: nothing to enqueue.
    for point in recipe_points(SearchConfig(methods=METHODS, budget=20, quantize=quantize)):
        assert "quantize" not in point


def test_enqueued_points_replay_exactly_and_stay_within_three_quarters_of_the_budget():
    cfg = SearchConfig(methods=METHODS, budget=12)
    points = initial_points(cfg)
    assert len(points) <= 12 * 3 // 4 and points[-3:] == recipe_points(cfg)
    spec = make_spec(cfg, build_model("simplecnn", 1, 10, 8), torch.randn(1, 1, 8, 8))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.TPESampler(seed=0))
    for point in points:
        study.enqueue_trial(point)
    for point in points:
        trial = study.ask()
        config = {**define_space(spec, trial), **trial.params}
        assert {k: config[k] for k in point} == point
        study.tell(trial, [0.5, 0.5])
