"""The registry and the typed reading of method settings."""
from __future__ import annotations

import pytest

from pruners.registry import PRUNERS, get_pruner, register


def test_registered_pruners_are_named_and_found_by_name():
    assert set(PRUNERS) == {"magnitude", "taylor", "fpgm", "lottery", "hybrid"}
    assert all(get_pruner(name).name == name for name in PRUNERS)
    with pytest.raises(KeyError, match="known: fpgm"):
        get_pruner("nope")


def test_a_method_must_remove_something_and_register_once():
    with pytest.raises(ValueError, match="structural, masked or both"):
        register("nothing", structural=False, masked=False)
    with pytest.raises(ValueError, match="registered twice"):
        register("magnitude")(lambda *args: None)
