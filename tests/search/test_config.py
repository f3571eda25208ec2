"""SearchConfig: one spelling per setting, safe round trips, no secrets in MLflow params."""
from __future__ import annotations

from search.config import SearchConfig, config_from_dict, config_to_dict, load_config, searched_fields


def test_database_passwords_never_reach_mlflow_params():
    cfg = load_config(["--optuna-storage", "postgresql://alice:s3cret@db:5432/optuna",
                       "--tracking-uri", "mysql://bob:pw@db/mlflow"])
    params = cfg.as_params()
    # The URL as it is used: the driver installed here named (mlflow_config.stores.normalize).
    assert params["optuna_storage"] == "postgresql+psycopg2://alice:***@db:5432/optuna"
    assert params["tracking_uri"] == "mysql://bob:***@db/mlflow"
    assert "s3cret" not in str(params)
    assert cfg.optuna_storage.endswith("s3cret@db:5432/optuna")  # the real URL is still used


def test_config_round_trips_through_the_search_record():
    cfg = load_config(["--budget", "7", "--methods", "fpgm,lottery", "--bounds-fc", "0.5,0.9", "--augment", "true"])
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_searched_settings_are_named_like_their_optuna_params():
    names = set(searched_fields())
    assert {"finetune_lr", "taylor_batches", "lottery_rounds", "lottery_rewind", "hybrid_filter_ratio",
            "hybrid_temperature", "hybrid_alpha", "schedule_start"} <= names
    assert all(hasattr(SearchConfig, n) for n in names)
