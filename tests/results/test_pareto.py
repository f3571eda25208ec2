"""Fronts and hypervolume against hand-worked examples."""
from __future__ import annotations

import pytest

from search.results.pareto import Point, dominates, front, hypervolume

PTS = [Point("a", 0.9, 0.5), Point("b", 0.8, 0.2), Point("c", 0.7, 0.3), Point("d", 0.95, 0.9),
       Point("e", 0.6, 0.1), Point("f", 0.8, 0.25)]


def test_front_is_exactly_the_non_dominated_points():
    got = {p.key for p in front(PTS)}
    assert got == {"a", "b", "d", "e"}
    for p in PTS:
        dominated = any(dominates(q, p) for q in PTS)
        assert (p.key in got) != dominated


def test_hypervolume_of_a_staircase():
    # e(0.1,0.6) b(0.2,0.8) a(0.5,0.9) d(0.9,0.95), reference (cost 1, acc 0)
    expected = 0.1 * 0.6 + 0.3 * 0.8 + 0.4 * 0.9 + 0.1 * 0.95
    assert hypervolume(PTS) == pytest.approx(expected)


def test_dominated_and_out_of_reference_points_add_nothing():
    base = hypervolume(PTS)
    assert hypervolume([*PTS, Point("g", 0.5, 0.6), Point("h", 0.99, 1.5)]) == pytest.approx(base)
