"""Rebuild BENCHMARKS.md from the JSON results in bench/results/ (no measuring): useful after
editing a table's layout, or to restore the file. Sections keep common.SECTION_ORDER.

    python bench/render.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402


def main() -> int:
    if common.BENCH_MD.exists():
        common.BENCH_MD.write_text("")
    for path in sorted(common.RESULTS.glob("*.json")):
        p = json.loads(path.read_text())
        name = path.stem
        try:
            body = _body(name, p)
        except (KeyError, TypeError, ValueError) as exc:
            print(f"skipped {name}: written by an older version of its script ({type(exc).__name__}: {exc}); rerun it")
            continue
        if body is None:
            continue
        common.update_section(name, body)
        print(f"rendered {name}")
    return 0


def _body(name: str, p: dict) -> str | None:
    from bench import concurrency, overhead, search_quality, speedup, throughput

    if name.startswith("search_quality"):
        p["per_seed"] = {int(k): v for k, v in p["per_seed"].items()}
        return search_quality._markdown(p, common.RESULTS / f"{name}.png")
    if name.startswith("overhead"):
        return overhead._markdown(p)
    if name.startswith("throughput"):
        return throughput._markdown(p)
    if name == "speedup":
        return speedup._markdown(p)
    if name.startswith("concurrency"):
        return concurrency._markdown(p)
    return None


if __name__ == "__main__":
    sys.exit(main())
