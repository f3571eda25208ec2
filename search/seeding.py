"""The first trials of a search, enqueued before the sampler takes over:

- one trial per method (when the budget allows two per method), so every method gets a front
  and a fair start whatever the sampler's first draws;
- the article's uniform global-magnitude recipe (search.space.recipe_points), so the front is
  never worse than the recipe.

At most three quarters of the budget is enqueued; the rest is the sampler's.
"""
from __future__ import annotations

from typing import Any

from search.config import SearchConfig
from search.space import recipe_points


def initial_points(cfg: SearchConfig) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    if len(cfg.methods) > 1 and cfg.budget >= 2 * len(cfg.methods):
        points += [{"method": m} for m in cfg.methods]
    points += recipe_points(cfg)
    return points[: cfg.budget * 3 // 4]
