"""Environment overrides put every variable back, also after an exception and after the block
changed it itself."""
from __future__ import annotations

import os

import pytest

from mlflow_config import environment


def test_overridden_sets_unsets_and_restores_on_error(monkeypatch):
    monkeypatch.setenv("PS_A", "before")
    monkeypatch.delenv("PS_B", raising=False)
    with pytest.raises(RuntimeError), environment.overridden({"PS_A": None, "PS_B": "set"}):
        assert "PS_A" not in os.environ and os.environ["PS_B"] == "set"
        raise RuntimeError
    assert os.environ["PS_A"] == "before" and "PS_B" not in os.environ


def test_restored_undoes_what_the_block_changed(monkeypatch):
    monkeypatch.setenv("PS_A", "before")
    monkeypatch.delenv("PS_B", raising=False)
    with environment.restored(("PS_A", "PS_B")):
        os.environ["PS_A"] = "changed"
        os.environ["PS_B"] = "new"
    assert os.environ["PS_A"] == "before" and "PS_B" not in os.environ
