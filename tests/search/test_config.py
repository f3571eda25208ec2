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


# ---- validation is driven by the declared `accepted` of each field ------------------------------

def _declared():
    from dataclasses import fields

    return [f for f in fields(SearchConfig) if f.metadata.get("accepted") is not None]


def _outside(annotation: str, accepted) -> str:
    """A value the declaration refuses, written as a user would."""
    if isinstance(accepted, tuple):
        return "bogus"
    import math

    below = accepted.lo - 1 if not accepted.lo_open else accepted.lo
    value = below if math.isfinite(below) else accepted.hi + 1
    text = str(int(value)) if float(value).is_integer() else repr(value)
    return f"{text},{text}" if annotation in ("Range", "IntRange") else text


def test_every_number_of_the_search_declares_what_it_accepts():
    """No numeric setting escapes validation: each has an interval (or is a searched setting,
    declared next to its method)."""
    from dataclasses import fields

    numeric = [f.name for f in fields(SearchConfig) if str(f.type) in ("int", "float", "Range", "IntRange")]
    undeclared = [n for n in numeric if f_meta(n).get("accepted") is None and f_meta(n).get("spec") is None]
    assert not undeclared


def f_meta(name: str) -> dict:
    from dataclasses import fields

    return dict(next(f for f in fields(SearchConfig) if f.name == name).metadata)


def test_each_declared_constraint_rejects_a_value_outside_it_naming_the_flag():
    import pytest

    from search.config import ConfigError

    checked = 0
    for f in _declared():
        value = _outside(str(f.type), f.metadata["accepted"])
        flag = "--" + f.name.replace("_", "-")
        with pytest.raises(ConfigError) as err:
            load_config([f"{flag}={value}"])
        assert str(err.value).startswith(f"{flag}: ") and "is not accepted; expected" in str(err.value), str(err.value)
        checked += 1
    assert checked >= 25


def test_split_seed_fixes_the_split_whatever_the_search_seed(monkeypatch, tmp_path):
    """Seeds 1 and 2 of a benchmark confirm on the split (and baseline) seed 0 developed on."""
    from search import run
    from trainables import data as data_module

    seen = []

    def fake_load(dataset, data_dir, home, split_seed, *rest):
        seen.append(split_seed)
        raise data_module.DataError("stop here")

    monkeypatch.setattr(data_module, "load_dataset", fake_load)
    for argv in (["--seed", "2"], ["--seed", "2", "--split-seed", "0"], ["--seed", "1", "--split-seed", "0"]):
        cfg = load_config(argv)
        try:
            run._prepare(cfg, tmp_path)
        except data_module.DataError:
            pass
    assert seen == [2, 0, 0]


def test_a_trial_is_rebuilt_on_the_split_its_search_used(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from search.results import reproduce
    from trainables import data as data_module

    seen = []
    monkeypatch.setattr(data_module, "load_dataset", lambda *a, **k: seen.append(a[3]))
    base = {"dataset": "digits", "data_dir": "None", "val_fraction": "0.1", "test_fraction": "0.1",
            "train_subset": "0", "home": str(tmp_path)}
    for params in ({**base, "seed": "3"}, {**base, "seed": "3", "split_seed": "None"},
                   {**base, "seed": "3", "split_seed": "0"}):
        reproduce.load_search_data(SimpleNamespace(data=SimpleNamespace(params=params)), None, None, None)
    assert seen == [3, 3, 0]
