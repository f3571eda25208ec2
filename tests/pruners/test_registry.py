"""The registry and the typed reading of method settings."""
from __future__ import annotations

import pytest

from pruners.base import float_setting, int_setting, str_setting
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


def test_int_setting_accepts_integral_values_only():
    assert [int_setting({"k": v}, "k") for v in (3, 3.0, "3")] == [3, 3, 3]
    for bad in (2.5, "2.5", True, None, [1]):
        with pytest.raises((TypeError, ValueError), match="'k'"):
            int_setting({"k": bad}, "k")
    assert int_setting({}, "k", 7) == 7
    with pytest.raises(KeyError, match="missing setting 'k'"):
        int_setting({}, "k")


def test_float_and_str_settings():
    assert float_setting({"r": "0.5"}, "r") == 0.5 and float_setting({"r": 1}, "r") == 1.0
    assert float_setting({}, "r", 0.0) == 0.0
    with pytest.raises(TypeError, match="'r'"):
        float_setting({"r": None}, "r")
    assert str_setting({"s": "global"}, "s") == "global" and str_setting({}, "s", "layer") == "layer"
    with pytest.raises(TypeError, match="'s'"):
        str_setting({"s": 1}, "s")
