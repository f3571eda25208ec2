"""The package layout's one rule: dependencies run search -> search.results -> trainables ->
pruners; mlflow_config stands apart; training loops and pruners never import Ray or MLflow.
The only top-level import names are the design's four (a fifth, like `results`, would collide
with other distributions on PyPI)."""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"search", "pruners", "trainables", "mlflow_config"}
# package folder -> imported modules it must never use (a module or any of its submodules),
# except those under the allowed prefixes (its own sub-floor)
FORBIDDEN = {
    "pruners": ({"search", "trainables", "mlflow_config", "ray", "mlflow", "optuna"}, set()),
    "trainables": ({"search", "mlflow_config", "ray", "mlflow", "optuna"}, set()),
    "search/results": ({"search", "ray"}, {"search.results"}),
    "mlflow_config": ({"search", "trainables", "pruners", "ray", "optuna"}, set()),
}


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def _under(module: str, prefixes: set[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(path: Path, forbidden: set[str], allowed: set[str]) -> list[str]:
    return sorted(m for m in imported_modules(path) if _under(m, forbidden) and not _under(m, allowed))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_downstream(package):
    forbidden, allowed = FORBIDDEN[package]
    bad = {str(p.relative_to(ROOT)): violations(p, forbidden, allowed) for p in sorted((ROOT / package).glob("*.py"))}
    assert not {k: v for k, v in bad.items() if v}


def test_checker_sees_imports(tmp_path):
    probe = tmp_path / "m.py"
    probe.write_text("import ray.tune\nfrom search.config import X\nfrom search.results import pareto\n"
                     "def f():\n    import mlflow\n")
    assert imported_modules(probe) == {"ray.tune", "search.config", "search.results", "mlflow"}
    assert violations(probe, {"search", "ray"}, {"search.results"}) == ["ray.tune", "search.config"]


def test_only_the_design_packages_are_installed():
    """setuptools installs exactly the four design packages as top-level import names."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {pattern.rstrip("*") for pattern in include} == PACKAGES
    top_level = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} - {"tests", "bench"}
    assert top_level == PACKAGES


def test_test_modules_import_no_other_test_module():
    """Shared fixtures live in conftest.py and shared helpers in plain modules: importing a test_*
    module runs its collection twice and couples two tests' files."""
    tests = ROOT / "tests"
    bad = {str(p.relative_to(ROOT)): sorted(m for m in imported_modules(p) if m.split(".")[-1].startswith("test_"))
           for p in sorted(tests.rglob("*.py"))}
    assert not {k: v for k, v in bad.items() if v}
