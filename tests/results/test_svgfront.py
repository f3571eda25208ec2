"""The interactive front page: small, script-free SVG with one circle per trial, hover titles and
one staircase per method's front."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from results.pareto import Point, front
from results.svgfront import fronts_html, nice_ticks

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
