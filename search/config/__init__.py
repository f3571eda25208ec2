"""SearchConfig: every setting of a search, spelled once, in six small modules by job:

- schema: the fields, their defaults, help and accepted values (searched settings generated
  from their declarations next to the code that uses them);
- recipes: per-dataset training defaults (what 0 / auto becomes);
- coercion: CLI strings and TOML values to the fields' types;
- cli: the argparse parser and TOML files, and `load_config`, the one entry;
- validation: every field against its declaration, then together, then against the data;
- serialization: the JSON form the search record keeps.

The field names are the keys of Optuna's space, Ray Tune's trial config and the MLflow params.
Searched settings are ranges "lo,hi" (a single value fixes them).
"""
from search.config.cli import build_parser, load_config
from search.config.coercion import ConfigError
from search.config.recipes import AUTO_RECIPE, Recipe
from search.config.schema import (
                                  SAMPLERS,
                                  SEARCHED,
                                  SECRET_FIELDS,
                                  SPACES,
                                  SearchConfig,
                                  searched_fields,
                                  searched_values,
                                  setting_groups,
)
from search.config.serialization import config_from_dict, config_to_dict, replace
from search.config.validation import RESUME_BUDGET, check_against_data, rewind_points, rewinding_methods, validate

__all__ = ["AUTO_RECIPE", "RESUME_BUDGET", "SAMPLERS", "SEARCHED", "SECRET_FIELDS", "SPACES", "ConfigError", "Recipe",
           "SearchConfig", "build_parser", "check_against_data", "config_from_dict", "config_to_dict", "load_config",
           "replace", "rewind_points", "rewinding_methods", "searched_fields", "searched_values", "setting_groups",
           "validate"]
