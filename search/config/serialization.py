"""A SearchConfig as JSON (the search record a resume reads back) and back again; the MLflow
params are `SearchConfig.as_params` (search.config.schema)."""
from __future__ import annotations

import dataclasses
from dataclasses import fields
from pathlib import Path
from typing import Any

from search.config.coercion import coerce_all
from search.config.schema import SearchConfig


def config_to_dict(cfg: SearchConfig) -> dict[str, Any]:
    """JSON-safe form, for the search record a resume reads back."""
    out = {}
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        out[f.name] = list(v) if isinstance(v, tuple) else (str(v) if isinstance(v, Path) else v)
    return out


def config_from_dict(values: dict[str, Any]) -> SearchConfig:
    return SearchConfig(**coerce_all(SearchConfig, values))


def replace(cfg: SearchConfig, **changes: Any) -> SearchConfig:
    return dataclasses.replace(cfg, **changes)
