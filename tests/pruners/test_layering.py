"""The package's shape: a method composes importance, allocation and application and never
imports another method; the layers import no method; which layers lose filters is decided in
one place (pruners.allocation.filter_groups) that every filter method goes through."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PRUNERS = Path(__file__).resolve().parents[2] / "pruners"
METHODS = ("magnitude", "taylor", "fpgm", "lottery", "hybrid")
LAYERS = ("importance", "allocation", "masking", "surgery", "graph", "layers", "settings", "base")


def imported_modules(module: str) -> set[str]:
    """Every pruners.<x> module `module` imports, by name (`from pruners import x` included)."""
    tree = ast.parse((PRUNERS / f"{module}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "pruners":
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pruners."):
            out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("pruners.")}
    return out


def called_names(module: str) -> set[str]:
    tree = ast.parse((PRUNERS / f"{module}.py").read_text())
    return {n.func.id if isinstance(n.func, ast.Name) else n.func.attr
            for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, (ast.Name, ast.Attribute))}


@pytest.mark.parametrize("method", METHODS)
def test_no_method_module_imports_another(method):
    others = set(METHODS) - {method}
    assert not imported_modules(method) & others


@pytest.mark.parametrize("layer", LAYERS)
def test_the_layers_import_no_method(layer):
    assert not imported_modules(layer) & set(METHODS)


def test_every_filter_method_asks_filter_groups_and_none_decides_by_itself():
    for method in ("taylor", "fpgm", "hybrid"):
        calls = called_names(method)
        assert "filter_groups" in calls, method
        assert not calls & {"filter_layers", "channel_groups", "layer_plan"}, method
