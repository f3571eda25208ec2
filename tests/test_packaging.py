"""Compatible ranges in pyproject.toml, exact pins in constraints.txt (what `make` installs): every
dependency has one pin, and every pin lies inside its range."""
from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in [*project["dependencies"], *extras["test"], *extras["onnx"]]]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.lower()] = version
    return pins


def test_no_exact_pin_in_pyproject():
    assert not [str(r) for r in _requirements() if any(s.operator == "==" for s in r.specifier)]


def test_every_dependency_is_pinned_inside_its_range():
    pins = _pins()
    assert not [r.name for r in _requirements() if r.name.lower() not in pins]
    outside = [f"{r.name}=={pins[r.name.lower()]} not in {r.specifier}" for r in _requirements()
               if not r.specifier.contains(pins[r.name.lower()], prereleases=True)]
    assert not outside
