"""The interactive front as one small self-contained HTML page: inline SVG, no script, no library.

MLflow's artifact viewer shows an .html artifact in a sandboxed iframe, where a plotting library
inlined in the page (plotly: ~4.6 MB) stays blank. Plain SVG draws without any script, stays a few
kB, needs no network, and each point's <title> is its hover tooltip (run name, method, val_acc,
test_acc, size, run id). Under the plot, the combined front as a table to read and copy.

Axes where the fronts are: the cost axis is logarithmic (fronts of pruned models spread over
orders of magnitude, 2% to 90% of dense; on a linear axis they crowd the left edge), and the
accuracy axis spans the fronts and the dense model, not the worst trial: a trial below it is
drawn hollow on the bottom edge, its accuracy in its tooltip.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from search.results.pareto import Point, front

W, H = 860, 520
LEFT, RIGHT, TOP, BOTTOM = 70, 190, 40, 55  # the legend sits in the right margin
LEGEND_CHARS = 24  # what fits the margin; longer labels are cut, whole in their tooltip
# matplotlib's tab10: the same colour per method as in pareto.png.
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf")


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^k) covering [lo, hi]."""
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(1, n - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    start = math.floor(lo / step) * step
    steps = math.ceil((hi - start) / step - 1e-9)  # 1e-9: 0.04 / 0.01 is 4.000000000000001 in floats
    return [round(start + i * step, 10) for i in range(int(steps) + 1)]


def log_ticks(lo: float, hi: float) -> list[float]:
    """1, 2, 5 x 10^k inside [lo, hi], at least the two ends' decades."""
    ticks = [m * 10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
             for m in (1, 2, 5) if lo <= m * 10.0 ** k <= hi]
    return ticks or [lo, hi]


class FrontAxes:
    """Where the fronts are: the cost range (log when it spans more than 2x) and the accuracy range
    of the fronts and the dense model. The PNG (search.results.plots) uses the same ranges."""

    def __init__(self, points: Sequence[Point], dense_acc: float | None):
        costs = [p.cost for p in points]
        self.log = min(costs) > 0 and max(costs) / min(costs) > 2.0  # a narrow or zero-cost range: linear
        if self.log:
            self.x0, self.x1 = min(costs) / 1.25, max(costs) * 1.25
            self.xt = log_ticks(self.x0, self.x1)
        else:
            self.xt = nice_ticks(0.0, max(costs + [1e-9]))
            self.x0, self.x1 = self.xt[0], self.xt[-1]
        series = {p.method for p in points}
        on_fronts = [p.acc for m in series for p in front(q for q in points if q.method == m)]
        accs = on_fronts + ([dense_acc] if dense_acc is not None else [])
        margin = max(0.005, 0.05 * (max(accs) - min(accs)))
        self.yt = nice_ticks(min(accs) - margin, min(max(accs) + margin, 1.0))  # no accuracy above 1
        self.pw, self.ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def x(self, v: float) -> float:
        if self.log:
            return LEFT + math.log(v / self.x0) / math.log(self.x1 / self.x0) * self.pw
        return LEFT + (v - self.x0) / (self.x1 - self.x0) * self.pw

    def below(self, acc: float) -> bool:
        return acc < self.yt[0]

    def y(self, v: float) -> float:
        v = max(v, self.yt[0])  # below the axis: on its edge
        return TOP + self.ph - (v - self.yt[0]) / (self.yt[-1] - self.yt[0]) * self.ph


def _steps(s: FrontAxes, pts: Sequence[Point]) -> str:
    """The front as a staircase: each point holds its accuracy until the next, cheaper-to-richer point."""
    xy: list[tuple[float, float]] = []
    for i, p in enumerate(pts):
        if i:
            xy.append((s.x(p.cost), s.y(pts[i - 1].acc)))
        xy.append((s.x(p.cost), s.y(p.acc)))
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)


def _axes(s: FrontAxes, cost_label: str) -> list[str]:
    out = [f'<rect x="{LEFT}" y="{TOP}" width="{s.pw}" height="{s.ph}" fill="none" stroke="#999"/>']
    for v in s.xt:
        out.append(f'<line x1="{s.x(v):.1f}" y1="{TOP}" x2="{s.x(v):.1f}" y2="{TOP + s.ph}" stroke="#eee"/>'
                   f'<text x="{s.x(v):.1f}" y="{TOP + s.ph + 16}" text-anchor="middle">{v:g}</text>')
    if s.log:
        cost_label += " (log scale)"
    for v in s.yt:
        out.append(f'<line x1="{LEFT}" y1="{s.y(v):.1f}" x2="{LEFT + s.pw}" y2="{s.y(v):.1f}" stroke="#eee"/>'
                   f'<text x="{LEFT - 6}" y="{s.y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    out.append(f'<text x="{LEFT + s.pw / 2}" y="{H - 12}" text-anchor="middle">{escape(cost_label)}</text>'
               f'<text transform="translate(16,{TOP + s.ph / 2}) rotate(-90)" text-anchor="middle">'
               "validation accuracy</text>")
    return out


def _tip(p: Point, series: str, on_front: bool, cost_label: str, below: bool) -> str:
    test = "" if p.test_acc is None else f"\ntest_acc {p.test_acc:.4f}"
    return (f"{p.name or p.key}\n{series} {p.method}{f' (on its {series} front)' if on_front else ''}\n"
            f"val_acc {p.acc:.4f}{' (below the plotted range)' if below else ''}{test}\n"
            f"{cost_label} {p.cost:.4g}\nrun {p.key}")


def _method(s: FrontAxes, method: str, pts: Sequence[Point], color: str, cost_label: str, series: str) -> list[str]:
    f = front(pts)
    on_front = {p.key for p in f}
    out = [f'<g class="method" data-method="{escape(method)}">',
           f'<polyline class="front" points="{_steps(s, f)}" fill="none" stroke="{color}" stroke-width="2"/>']
    for p in pts:
        r, opacity = (5, 1.0) if p.key in on_front else (3.5, 0.45)
        fill = "none" if s.below(p.acc) else color
        tip = _tip(p, series, p.key in on_front, cost_label, s.below(p.acc))
        out.append(f'<circle class="trial" data-run-id="{escape(p.key)}" cx="{s.x(p.cost):.1f}" cy="{s.y(p.acc):.1f}" '
                   f'r="{r}" fill="{fill}" fill-opacity="{opacity}" stroke="{color}">'
                   f"<title>{escape(tip)}</title></circle>")
    return out + ["</g>"]


def _table(points: Sequence[Point], cost_label: str, series: str) -> str:
    """The combined front, cheapest first: what to read and copy (select, Ctrl-C)."""
    head = ("run", series, "val_acc", "test_acc", cost_label, "run id")
    rows = ["<tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for p in front(points):
        test = "" if p.test_acc is None else f"{p.test_acc:.4f}"
        cells = (p.name or p.key, p.method, f"{p.acc:.4f}", test, f"{p.cost:.4g}", p.key)
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return ('<table class="front" style="border-collapse:collapse;font:12px sans-serif" border="1" cellpadding="4">'
            f"<caption style=\"text-align:left\">Combined front ({len(rows) - 1} trials), cheapest first</caption>"
            + "".join(rows) + "</table>")


def _legend(entries: list[tuple[str, str, str]]) -> list[str]:
    x, out = W - RIGHT + 14, []
    for i, (label, color, dash) in enumerate(entries):
        y = TOP + 10 + 20 * i
        dasharray = f' stroke-dasharray="{dash}"' if dash else ""
        shown = label if len(label) <= LEGEND_CHARS else label[:LEGEND_CHARS - 1] + "\u2026"  # whole on hover
        out.append(f'<line x1="{x}" y1="{y}" x2="{x + 22}" y2="{y}" stroke="{color}" stroke-width="2"{dasharray}/>'
                   f'<text x="{x + 27}" y="{y + 4}"><title>{escape(label)}</title>{escape(shown)}</text>')
    return out


def fronts_html(points: Sequence[Point], title: str, cost_label: str, dense_acc: float | None = None,
                series: str = "method") -> str:
    """Every trial (faint), each series' front (staircase, bold points), the combined front
    (dashed), and the combined front as a table. `series`: what the points' `method` names (a
    method, or a search in search.results.compare)."""
    by_method: dict[str, list[Point]] = {}
    for p in points:
        by_method.setdefault(p.method or "all", []).append(p)
    body: list[str] = []
    legend: list[tuple[str, str, str]] = []
    if points:
        s = FrontAxes(points, dense_acc)
        body += _axes(s, cost_label)
        for i, (method, pts) in enumerate(sorted(by_method.items())):
            color = COLORS[i % len(COLORS)]
            body += _method(s, method, pts, color, cost_label, series)
            legend.append((f"{method} ({len(pts)} trial{'' if len(pts) == 1 else 's'})", color, ""))
        body.append(f'<polyline class="combined-front" points="{_steps(s, front(points))}" fill="none" '
                    'stroke="#000" stroke-width="1" stroke-dasharray="5,4"/>')
        legend.append(("combined front", "#000", "5,4"))
        if dense_acc is not None:
            body.append(f'<line class="dense" x1="{LEFT}" y1="{s.y(dense_acc):.1f}" x2="{LEFT + s.pw}" '
                        f'y2="{s.y(dense_acc):.1f}" stroke="#888" stroke-dasharray="2,3"/>')
            legend.append((f"dense ({dense_acc:.3f})", "#888", "2,3"))
    else:
        body.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no finished trials</text>')
    svg = "\n".join([f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" '
                     # Scales to the viewer's width (MLflow's artifact pane is narrower than W).
                     f'style="width:100%;max-width:{W}px;height:auto" font-family="sans-serif" font-size="12">',
                     f'<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
                     *body, *_legend(legend), "</svg>"])
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{escape(title)}</title></head>\n'
            '<body style="margin:8px;background:#fff">\n'
            f"{svg}\n<p style=\"font:12px sans-serif;color:#555\">Hover a point for its run, val_acc, test_acc "
            f"and size. Faint: every trial; bold: on its {escape(series)}'s front; dashed: the combined front.</p>\n"
            f"{_table(points, cost_label, series) if points else ''}\n</body></html>\n")
