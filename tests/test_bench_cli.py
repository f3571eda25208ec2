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
