"""Bad input: one line naming the value and what is accepted, exit 2, no Ray, no MLflow run."""
from __future__ import annotations

import pytest

import search.run as run_module

CASES = {
    "budget zero": (["--budget", "0"], "--budget: 0"),
    "budget not a number": (["--budget", "lots"], "--budget: 'lots' is not an integer"),
    "unknown dataset": (["--dataset", "imagenet"], "--dataset: 'imagenet'"),
    "unknown model": (["--model", "alexnet"], "--model: 'alexnet'"),
    "unknown method": (["--methods", "magnitude,prayer"], "--methods: 'prayer'"),
    "bounds above one": (["--bounds-fc", "0.1,1.2"], "--bounds-fc: '0.1,1.2'"),
    "bounds negative": (["--bounds-conv=-0.1,0.5"], "--bounds-conv: '-0.1,0.5'"),
    "bounds min above max": (["--bounds-conv", "0.6,0.2"], "lo,hi with 0 <= lo <= hi < 1"),
    "missing data dir": (["--dataset", "cifar10", "--data-dir", "/no/such/dir"], "--data-dir: '/no/such/dir'"),
    "unknown flag": (["--budgit", "3"], "unrecognized arguments: --budgit 3"),
}


@pytest.fixture
def guarded(monkeypatch, tmp_path):
    """Fails the test if Ray would start; returns a home folder that must stay empty."""
    monkeypatch.setattr(run_module, "_start_ray", lambda address: pytest.fail("Ray started on bad input"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path / "home"


def check_rejected(argv, expected, home, capsys):
    code = run_module.main([*argv, "--home", str(home)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert not (home / "mlflow.db").exists()  # no MLflow run, not even a database


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line_and_creates_nothing(case, guarded, capsys):
    argv, expected = CASES[case]
    check_rejected(argv, expected, guarded, capsys)


@pytest.mark.parametrize("content,expected", [
    ("budget = [1, 2", "is not valid TOML"),
    ("budgett = 3", "unknown setting(s) budgett"),
    ("budget = 'x'", "--budget: 'x' is not an integer"),
])
def test_malformed_config_file_exits_2(content, expected, guarded, tmp_path, capsys):
    path = tmp_path / "search.toml"
    path.write_text(content)
    check_rejected(["--config", str(path)], expected, guarded, capsys)


def test_missing_config_file_exits_2(guarded, tmp_path, capsys):
    check_rejected(["--config", str(tmp_path / "nope.toml")], "does not exist", guarded, capsys)


def test_config_file_values_apply_and_flags_win(tmp_path):
    from search.config import load_config

    path = tmp_path / "search.toml"
    path.write_text('budget = 7\nmethods = ["fpgm", "hybrid"]\nbounds-fc = [0.5, 0.9]\n')
    cfg = load_config(["--config", str(path), "--budget", "9"])
    assert cfg.budget == 9 and cfg.methods == ("fpgm", "hybrid") and cfg.bounds_fc == (0.5, 0.9)


def test_help_explains_and_exits_0(capsys):
    with pytest.raises(SystemExit) as exc:
        run_module.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--budget" in out and "Pareto" in out and "--methods" in out
