"""The search-space table of docs/methods.md (moved there from the README) names every searched
setting: a setting added to the search config without a line in that table fails here, so the
table cannot drift from the code."""
from __future__ import annotations

import re
from pathlib import Path

from search.config import searched_fields

README = Path(__file__).resolve().parents[2] / "docs" / "methods.md"


def documented_keys() -> set[str]:
    text = README.read_text()
    table = text.split("### The search space", 1)[1].split("\n\n", 3)[2]  # the table after the intro
    return {key for row in table.splitlines() if row.startswith("| `")
            for key in re.findall(r"`([a-z_.<>]+)`", row.split("|")[1])}


def test_every_searched_setting_has_a_row_in_the_readme_table():
    keys = documented_keys()
    assert {"method", "sparsity.<layer>"} <= keys  # the table was found and parsed
    missing = sorted(set(searched_fields()) - keys)
    assert not missing, f"README search-space table lacks {missing}"


def test_every_registered_method_has_a_row_in_the_readme_methods_table():
    from pruners.registry import method_names

    table = README.read_text().split("## The five methods", 1)[1].split("\n\n", 3)[2]
    rows = {row.split("|")[1].strip().strip("`") for row in table.splitlines() if row.startswith("| `")}
    assert rows == set(method_names())
