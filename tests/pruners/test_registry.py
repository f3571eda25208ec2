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


@pytest.mark.parametrize("method", sorted(PRUNERS))
def test_settings_are_checked_against_what_they_accept_however_they_are_built(method):
    """One check for every method, in pruners.settings: a choice outside `accepted` and a
    number outside its interval are refused with the setting, the value and what is accepted,
    whether the settings come from a flat mapping (a trial) or from the constructor."""
    from pruners.settings import Interval

    settings_type = get_pruner(method).settings_type
    for spec in settings_type.specs():
        if isinstance(spec.accepted, Interval):
            bad = spec.accepted.hi if spec.accepted.hi_open else spec.accepted.lo - 1
            expected = rf"{spec.name} {bad!r} is not accepted; expected .*{spec.name}"
        else:
            bad, expected = "nope", rf"{spec.name} 'nope' is not accepted; expected one of {', '.join(spec.accepted)}"
        with pytest.raises(ValueError, match=expected):
            settings_type.from_values({spec.name: bad})
        with pytest.raises(ValueError, match=expected):
            settings_type(**{spec.name: bad})


def test_a_pruner_refuses_bad_settings_before_pruning():
    from torch import nn

    model = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"hybrid_filter_ratio 0\.9 is not accepted; expected 0 <= hybrid_filter_ratio < 0\.9"):
        get_pruner("hybrid")(model, {"0": 0.5}, {"hybrid_filter_ratio": 0.9}, None)
    with pytest.raises(ValueError, match="hybrid_quant 'int4' is not accepted; expected one of ptq, qat"):
        get_pruner("hybrid")(model, {"0": 0.5}, {"hybrid_quant": "int4"}, None)


def test_every_register_in_the_package_is_found_without_a_list():
    """A new method is one file with @register: the registry imports every module itself."""
    import ast
    from pathlib import Path

    from pruners.registry import method_names

    declared = set()
    for path in Path(__file__).resolve().parents[2].joinpath("pruners").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "register"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                declared.add(node.args[0].value)
    assert declared == set(method_names())


def test_method_order_does_not_depend_on_import_order():
    import subprocess
    import sys

    code = "import pruners.hybrid, pruners.fpgm; from pruners.registry import method_names; print(method_names())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "['magnitude', 'taylor', 'fpgm', 'lottery', 'hybrid']"
