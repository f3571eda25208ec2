"""The benchmark scripts answer bad input the product's way: one line naming the flag, exit 2."""
from __future__ import annotations

import importlib

import pytest

SCRIPTS = ("article_claims", "baseline_recipe", "concurrency", "fpgm_speed", "overhead", "search_quality", "speedup",
           "throughput")


@pytest.mark.parametrize("script", SCRIPTS)
def test_an_unknown_flag_is_one_line_exit_2(script, capsys):
    module = importlib.import_module(f"bench.{script}")
    with pytest.raises(SystemExit) as stop:
        module.main(["--no-such-flag", "3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1, err
    assert err[0] == "error: unrecognized arguments: --no-such-flag 3 (see --help)"


def test_a_bad_value_names_the_flag(capsys):
    module = importlib.import_module("bench.search_quality")
    with pytest.raises(SystemExit) as stop:
        module.main(["--seeds", "zero"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and err == ["error: --seeds: 'zero' is not accepted; expected comma-separated "
                                            "integers, e.g. 0,1 (see --help)"]


def _one_line_exit_2(capsys, argv):
    module = importlib.import_module("bench.search_quality")
    with pytest.raises(SystemExit) as stop:
        module.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1, err
    return err[0]


def test_a_setting_the_dataset_lacks_is_one_line(capsys):
    assert _one_line_exit_2(capsys, ["--dataset", "digits", "--setting", "resnet20"]) == (
        "error: --setting: 'resnet20' is not accepted with --dataset digits; expected simplecnn (see --help)")
    assert _one_line_exit_2(capsys, ["--dataset", "cifar10", "--setting", "vgg"]).startswith(
        "error: --setting: 'vgg' is not accepted with --dataset cifar10; expected ")


def test_cifar10_means_resnet20_from_the_committed_checkpoint_on_split_seed_0():
    sq = importlib.import_module("bench.search_quality")
    args = sq._parse(["--dataset", "cifar10", "--seeds", "0,1,2"])
    assert (args.setting, args.name, args.checkpoint) == ("resnet20", "search_quality_cifar10_resnet20", sq.CHECKPOINT)
    flags = args.flags
    assert flags[flags.index("--model") + 1] == "resnet20" and flags[flags.index("--split-seed") + 1] == "0"
    assert flags[flags.index("--checkpoint") + 1] == "bench/checkpoints/resnet20_cifar10.pt"  # recorded relative
    assert sq.run_flags(flags)[flags.index("--checkpoint") + 1] == str(sq.common.ROOT / sq.CHECKPOINT)
    assert sq._parse(["--dataset", "cifar10", "--setting", "simplecnn"]).name == "search_quality_cifar10"


def test_the_committed_checkpoint_passes_its_hash_check():
    import json

    sq = importlib.import_module("bench.search_quality")
    recorded = json.loads((sq.common.ROOT / sq.CHECKPOINT_RECORD).read_text())["arms"]["default"]["checkpoint_sha256"]
    assert sq._check_checkpoint(sq.CHECKPOINT) == recorded


@pytest.mark.parametrize("content", [b"not the checkpoint", None])
def test_another_checkpoint_is_refused_in_one_line(content, tmp_path, monkeypatch, capsys):
    import dataclasses

    sq = importlib.import_module("bench.search_quality")
    path = tmp_path / "resnet20_cifar10.pt"
    if content is not None:
        path.write_bytes(content)
    key = ("cifar10", "resnet20")
    monkeypatch.setitem(sq.SETTINGS, key, dataclasses.replace(sq.SETTINGS[key], checkpoint=str(path)))
    err = _one_line_exit_2(capsys, ["--dataset", "cifar10", "--dry-run"])
    if content is None:
        assert err.startswith(f"error: --setting: cannot read the checkpoint {path}: ")
    else:
        assert err.startswith(f"error: --setting: {path} has sha256 ") and sq.CHECKPOINT_RECORD in err


def test_dry_run_shows_random_and_enqueued_only_get_the_defaults_points(capsys):
    sq = importlib.import_module("bench.search_quality")
    assert sq.main(["--budget", "12", "--seeds", "0", "--dry-run",
                    "--arms", "default,random,enqueued-only,anchored,lamp"]) == 0
    out = capsys.readouterr().out
    from search.config import load_config
    from search.seeding import initial_points

    n = len(initial_points(load_config(["--dataset", "digits", "--budget", "12"])))
    assert f"seed 0: {n} enqueued points" in out
    assert "random: prune-search run --dataset digits --seed 0 --budget 12 --sampler random (+ the default's" in out
    assert f"enqueued-only: prune-search run --dataset digits --seed 0 --budget {n} (+ the default's" in out
    assert "anchored: prune-search run --dataset digits --seed 0 --budget 12 --space anchored\n" in out
    assert "lamp: one-shot magnitude_scope lamp at 0.2/0.5/0.8/0.9/0.95/0.98 x quantize none/int8" in out
