"""The package layout's one rule: dependencies run search -> results -> trainables -> pruners;
mlflow_config stands apart; training loops and pruners never import Ray or MLflow."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> top-level modules it must never import
FORBIDDEN = {
    "pruners": {"search", "results", "trainables", "mlflow_config", "ray", "mlflow", "optuna"},
    "trainables": {"search", "results", "mlflow_config", "ray", "mlflow", "optuna"},
    "results": {"search", "ray"},
    "mlflow_config": {"search", "results", "trainables", "pruners", "ray", "optuna"},
}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downstream(package):
    bad = {str(p.relative_to(ROOT)): sorted(imported_roots(p) & FORBIDDEN[package])
           for p in sorted((ROOT / package).glob("*.py"))}
    assert not {k: v for k, v in bad.items() if v}


def test_checker_sees_imports(tmp_path):
    probe = tmp_path / "m.py"
    probe.write_text("import ray.tune\nfrom search.config import X\ndef f():\n    import mlflow\n")
    assert imported_roots(probe) == {"ray", "search", "mlflow"}
