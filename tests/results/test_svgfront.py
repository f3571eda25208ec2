"""The interactive front page: small, script-free SVG with one circle per trial, hover titles and
one staircase per method's front."""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from search.results.pareto import Point, front
from search.results.svgfront import fronts_html, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"
POINTS = [Point("run-a", 0.95, 0.50, "magnitude"), Point("run-b", 0.90, 0.20, "magnitude"),
          Point("run-c", 0.97, 0.90, "fpgm"), Point("run-d", 0.80, 0.30, "fpgm"), Point("run-e", 0.85, 0.10, "hybrid")]


def svg_of(page: str) -> ET.Element:
    return ET.fromstring(re.search(r"<svg.*</svg>", page, re.S).group(0))  # well-formed, or this raises


def test_every_trial_is_a_circle_with_its_run_and_metrics_on_hover():
    page = fronts_html(POINTS, "t", "size_bytes / dense size_bytes", dense_acc=0.96)
    circles = svg_of(page).findall(f".//{SVG}circle")
    assert sorted(c.get("data-run-id") for c in circles) == sorted(p.key for p in POINTS)
    tips = {c.get("data-run-id"): c.find(f"{SVG}title").text for c in circles}
    assert "val_acc 0.8500" in tips["run-e"] and "size_bytes / dense size_bytes 0.1" in tips["run-e"]
    assert "<script" not in page.lower() and len(page.encode()) < 20_000


def test_each_method_has_its_front_and_the_combined_front_is_drawn():
    root = svg_of(fronts_html(POINTS, "t", "cost"))
    groups = {g.get("data-method"): g for g in root.findall(f".//{SVG}g[@class='method']")}
    assert set(groups) == {"magnitude", "fpgm", "hybrid"}
    for method, g in groups.items():
        staircase = g.find(f"{SVG}polyline[@class='front']").get("points").split()
        n = len(front(p for p in POINTS if p.method == method))
        assert len(staircase) == 2 * n - 1  # a point per front member plus a corner between two
    assert root.find(f".//{SVG}polyline[@class='combined-front']") is not None


def test_points_sit_inside_the_plot_and_higher_accuracy_is_higher_up():
    root = svg_of(fronts_html(POINTS, "t", "cost"))
    ys = {c.get("data-run-id"): float(c.get("cy")) for c in root.iter(f"{SVG}circle")}
    xs = [float(c.get("cx")) for c in root.iter(f"{SVG}circle")]
    assert ys["run-c"] < ys["run-a"] < ys["run-d"]  # SVG's y grows downwards
    width = int(root.get("viewBox").split()[2])
    assert all(0 < x < width for x in xs)


def test_names_are_escaped_and_no_trials_says_so():
    page = fronts_html([Point("r<1>", 0.5, 0.5, "a&b")], "<title>", "cost")
    svg_of(page)
    assert "r&lt;1&gt;" in page and "a&amp;b" in page
    assert "no finished trials" in fronts_html([], "empty", "cost")


def test_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0.0, 0.93) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    ticks = nice_ticks(0.8123, 0.9911)
    assert ticks[0] <= 0.8123 and ticks[-1] >= 0.9911 and len(ticks) <= 8


SPREAD = [Point("r1", 0.95, 0.037, "magnitude", "magnitude-1", 0.94), Point("r2", 0.96, 0.09, "magnitude", "m-2", 0.95),
          Point("r3", 0.93, 0.05, "fpgm", "fpgm-3", 0.92), Point("r4", 0.40, 0.8, "fpgm", "fpgm-4", 0.41),
          Point("r5", 0.97, 0.6, "hybrid", "hybrid-5", None)]


def test_the_size_axis_is_logarithmic_where_fronts_spread_over_decades():
    root = svg_of(fronts_html(SPREAD, "t", "size"))
    xs = {c.get("data-run-id"): float(c.get("cx")) for c in root.iter(f"{SVG}circle")}
    # Equal ratios are equal distances: 0.037 -> 0.05 -> ... on a log axis, not a sliver at the left.
    per_decade = (xs["r4"] - xs["r1"]) / math.log10(0.8 / 0.037)
    assert (xs["r3"] - xs["r1"]) == pytest.approx(per_decade * math.log10(0.05 / 0.037), rel=1e-2)
    assert xs["r2"] - xs["r1"] > 0.25 * (xs["r4"] - xs["r1"])
    assert any("(log scale)" in (t.text or "") for t in root.iter(f"{SVG}text"))


def test_the_accuracy_axis_spans_the_fronts_and_an_outlier_sits_hollow_on_its_edge():
    root = svg_of(fronts_html(SPREAD + [Point("r6", 0.10, 0.3, "magnitude", "bad-6")], "t", "size", dense_acc=0.97))
    circles = {c.get("data-run-id"): c for c in root.iter(f"{SVG}circle")}
    ys = {k: float(c.get("cy")) for k, c in circles.items()}
    assert ys["r6"] == max(ys.values()) and circles["r6"].get("fill") == "none"
    assert "below the plotted range" in circles["r6"].find(f"{SVG}title").text
    assert ys["r3"] - ys["r2"] > 0.1 * (ys["r6"] - ys["r2"])  # 0.93 vs 0.96 is not squeezed by 0.10


def test_hover_names_the_run_and_its_test_accuracy_and_the_front_is_a_table():
    page = fronts_html(SPREAD, "t", "size")
    tips = {c.get("data-run-id"): c.find(f"{SVG}title").text for c in svg_of(page).iter(f"{SVG}circle")}
    assert tips["r1"].startswith("magnitude-1\n") and "test_acc 0.9400" in tips["r1"] and "val_acc 0.9500" in tips["r1"]
    table = ET.fromstring(re.search(r"<table.*</table>", page, re.S).group(0))
    rows = [[td.text for td in tr] for tr in table.iter("tr")][1:]
    assert [r[0] for r in rows] == [p.name for p in front(SPREAD)]  # the combined front, cheapest first
    assert rows[0][3] == "0.9400" and rows[-1][3] is None  # test_acc, blank where unknown


def test_compare_pages_say_search_and_long_labels_are_whole_on_hover():
    long = "digits-20261204-233512-budget-50-long-name"
    page = fronts_html([Point("a", 0.9, 0.1, long), Point("b", 0.8, 0.05, "other")], "t", "size", series="search")
    assert "search's front" in page and "method's front" not in page
    legend = [t for t in svg_of(page).iter(f"{SVG}text") if t.find(f"{SVG}title") is not None]
    assert any(t.find(f"{SVG}title").text.startswith(long) and "\u2026" in "".join(t.itertext()) for t in legend)


def test_the_accuracy_axis_never_runs_above_one():
    from search.results.svgfront import FrontAxes

    axes = FrontAxes([Point("a", 1.0, 0.03, "fpgm"), Point("b", 0.967, 0.029, "fpgm")], dense_acc=0.989)
    assert axes.yt[-1] == 1.0 and axes.yt[0] <= 0.967
