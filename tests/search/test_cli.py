"""`prune-search`: one console script whose subcommands are the tools' own parsers."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from search import cli

ROOT = Path(__file__).resolve().parents[2]


def test_console_script_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["prune-search"] == "search.cli:main"


def test_help_lists_every_subcommand(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("run", "evaluate", "export", "compare", "ui", "dashboard"):
        assert f"\n  {name} " in out


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_each_subcommand_has_its_own_help(command, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([command, "--help"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: prune-search {command} ")


def test_unknown_command_is_one_line_exit_2(capsys):
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'serve' is not accepted" in err and "run, evaluate" in err


def test_a_bad_flag_reads_the_same_through_the_cli(capsys):
    assert cli.main(["export", "--format", "pickle"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "pickle" in err


def test_python_m_search_run_keeps_its_name():
    """`python -m search.run` works exactly as before the console script."""
    out = subprocess.run([sys.executable, "-m", "search.run", "--help"], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("usage: python -m search.run ")
