"""Progress goes through `logging` (one logger per module): the command line prints the records
as bare lines to stdout for the duration of the command (search.results.cli_kit.printed_logs),
api.search(verbose=False) prints none, and a library user silences a package with its logger."""
from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from search import api
from search import run as run_mod
from search.results.cli_kit import PROJECT_LOGGERS, printed_logs

ROOT = Path(__file__).resolve().parents[2]


def _state() -> list[tuple[str, int, list[logging.Handler]]]:
    return [(name, logging.getLogger(name).level, list(logging.getLogger(name).handlers)) for name in PROJECT_LOGGERS]


def _log_a_search() -> int:
    """What a search logs, from several modules and levels (no data, Ray or MLflow)."""
    logging.getLogger("trainables.baseline").info("baseline abc: epoch 1/3 loss 0.5000")
    logging.getLogger("search.tune").info("[1/2] fpgm      val_acc=0.9833")
    logging.getLogger("search.run").warning("1 of 2 trials failed")
    logging.getLogger("trainables.trial").debug("pruning with fpgm")  # trial-side detail: never printed
    logging.getLogger("elsewhere").info("not the project's")
    return 0


PRINTED = "baseline abc: epoch 1/3 loss 0.5000\n[1/2] fpgm      val_acc=0.9833\n1 of 2 trials failed\n"


def test_the_cli_handler_prints_bare_messages_to_stdout_and_is_removed_afterwards(capsys):
    before = _state()
    with printed_logs():
        _log_a_search()
    assert capsys.readouterr().out == PRINTED
    assert _state() == before  # no handler left, levels as they were
    _log_a_search()
    assert capsys.readouterr().out == ""


def test_the_handler_is_removed_when_the_command_raises(capsys):
    before = _state()
    with pytest.raises(RuntimeError), printed_logs():
        raise RuntimeError("stop")
    assert _state() == before


def test_search_run_main_prints_the_progress_lines(monkeypatch, capsys):
    monkeypatch.setattr(run_mod, "load_config", lambda argv, prog: None)
    monkeypatch.setattr(run_mod, "run_search", lambda cfg: _log_a_search())
    before = _state()
    assert run_mod.main([]) == 0
    assert capsys.readouterr().out == PRINTED
    assert _state() == before


def build(num_classes: int = 2) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(16, num_classes))


class Stop(Exception):
    """Ends api.search right after run_search (no MLflow store to read the front from)."""


def _api_search(monkeypatch, tmp_path, **kwargs):
    def fake_run_search(cfg):
        _log_a_search()
        raise Stop

    monkeypatch.setattr(api, "load_config", lambda argv: None)
    monkeypatch.setattr(run_mod, "run_search", fake_run_search)
    x, y = torch.zeros(4, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1, 0, 1])
    with pytest.raises(Stop):
        api.search(model=build, train=(x, y), val=(x, y), home=tmp_path, **kwargs)


def test_api_search_verbose_false_prints_nothing(monkeypatch, tmp_path, capsys):
    _api_search(monkeypatch, tmp_path, verbose=False)
    captured = capsys.readouterr()
    assert captured.out == "" and "epoch 1/3" not in captured.err


def test_api_search_verbose_prints_what_the_command_line_prints(monkeypatch, tmp_path, capsys):
    before = _state()
    _api_search(monkeypatch, tmp_path)
    assert capsys.readouterr().out == PRINTED
    assert _state() == before


def test_a_library_user_silences_a_package_with_its_logger(monkeypatch, tmp_path, capsys):
    trainables = logging.getLogger("trainables")
    trainables.setLevel(logging.WARNING)
    try:
        _api_search(monkeypatch, tmp_path)
        assert capsys.readouterr().out == "[1/2] fpgm      val_acc=0.9833\n1 of 2 trials failed\n"
        assert trainables.level == logging.WARNING  # the user's setting, kept
    finally:
        trainables.setLevel(logging.NOTSET)


def test_the_deprecated_log_callable_still_gets_the_lines(monkeypatch, tmp_path, capsys):
    lines: list[str] = []
    with pytest.warns(DeprecationWarning, match="verbose"):
        _api_search(monkeypatch, tmp_path, verbose=False, log=lines.append)
    assert lines == PRINTED.splitlines() and capsys.readouterr().out == ""


def test_python_m_search_run_prints_the_run_modules_own_lines(tmp_path):
    """Under `python -m search.run` the module is __main__: its lines must still be the project's
    (the "lottery: left out" line, then a data error stops it before any work)."""
    script = textwrap.dedent(f"""
        import runpy, sys, types
        from pathlib import Path
        import search.config, search.preflight, trainables.data
        class Config(types.SimpleNamespace):
            def __getattr__(self, name):  # the settings this path does not read
                return None
        cfg = Config(name="x", dataset="digits", home=Path({str(tmp_path)!r}), checkpoint="trained.pt")
        search.config.load_config = lambda argv, prog: cfg
        search.preflight.check_search = lambda *args: None
        def stop(*args, **kwargs):
            raise trainables.data.DataError("--dataset: stopped here")
        trainables.data.load_dataset = stop
        sys.argv = ["search.run"]
        runpy.run_module("search.run", run_name="__main__")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stdout.startswith("lottery: left out (it rewinds"), (done.stdout, done.stderr)
    assert done.stderr.strip().endswith("error: --dataset: stopped here")
