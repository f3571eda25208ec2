"""Rebuild BENCHMARKS.md from the JSON results in bench/results/ (no measuring): useful after
editing a table's layout, or to restore the file. Each result is rendered by the script that
wrote it; sections keep markdown.SECTION_ORDER.

    python bench/render.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, markdown  # noqa: E402


def main() -> int:
    if common.BENCH_MD.exists():
        common.BENCH_MD.write_text("")
    for path in sorted(common.RESULTS.glob("*.json")):
        module = markdown.owner(path.stem)
        if module is None:
            continue
        try:
            body = module.markdown_section(json.loads(path.read_text()), path.stem)
        except (KeyError, TypeError, ValueError) as exc:
            print(f"skipped {path.stem}: written by an older version of its script ({type(exc).__name__}: {exc}); "
                  "rerun it")
            continue
        markdown.update_section(path.stem, body)
        print(f"rendered {path.stem}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
