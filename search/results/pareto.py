"""Pareto fronts (maximize accuracy, minimize cost), hypervolume, and the plots and tables.

Cost is normalized by the dense model's value (size, FLOPs, ...), so fronts of different
searches share one scale. The hypervolume reference point is (cost ratio 1.0, accuracy 0.0):
the dense model's cost at zero accuracy; points costing more than dense add nothing.
"""
from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

HV_REF = (1.0, 0.0)  # (cost ratio, accuracy)


@dataclass(frozen=True)
class Point:
    key: str  # trial / run identifier
    acc: float
    cost: float  # normalized cost, e.g. size_bytes / dense size_bytes
    method: str = ""  # the series it belongs to: a method, or a search in search.results.compare
    name: str = ""  # the trial's MLflow run name, for people
    test_acc: float | None = None  # reported beside the front, never used to choose it


def dominates(a: Point, b: Point) -> bool:
    return a.acc >= b.acc and a.cost <= b.cost and (a.acc > b.acc or a.cost < b.cost)


def front(points: Iterable[Point]) -> list[Point]:
    """Non-dominated points, sorted by cost. O(n log n): sweep by cost, keep rising accuracy."""
    pts = sorted(points, key=lambda p: (p.cost, -p.acc))
    out: list[Point] = []
    best = float("-inf")
    for p in pts:
        if p.acc > best:
            out.append(p)
            best = p.acc
    return out


def hypervolume(points: Iterable[Point], ref: tuple[float, float] = HV_REF) -> float:
    """Area dominated by the front inside [cost, ref_cost] x [ref_acc, acc]."""
    ref_cost, ref_acc = ref
    # Front sorted by cost with accuracy rising: point i is the best reachable from its cost up
    # to the next point's cost, so the dominated region is a staircase of strips.
    pts = [p for p in front(points) if p.cost < ref_cost and p.acc > ref_acc]
    area = 0.0
    for i, p in enumerate(pts):
        next_cost = pts[i + 1].cost if i + 1 < len(pts) else ref_cost
        area += (next_cost - p.cost) * (p.acc - ref_acc)
    return area


def hypervolume_curve(points_in_order: Sequence[Point], ref: tuple[float, float] = HV_REF) -> list[float]:
    """Hypervolume after each trial, in completion order."""
    return [hypervolume(points_in_order[: i + 1], ref) for i in range(len(points_in_order))]


def write_csv(rows: list[dict], path: Path) -> None:
    if not rows:
        path.write_text("")
        return
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def format_table(rows: list[dict], columns: Sequence[str]) -> str:
    cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    return str(v)
