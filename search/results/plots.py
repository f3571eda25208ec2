"""Front plots: PNG (matplotlib) and a small HTML page with inline SVG (hover a point for its run),
both shown by MLflow's artifact viewer."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from search.results.pareto import Point, front


def _series(points: Sequence[Point]) -> dict[str, list[Point]]:
    by_method: dict[str, list[Point]] = {}
    for p in points:
        by_method.setdefault(p.method or "all", []).append(p)
    return by_method


def plot_fronts_png(points: Sequence[Point], path: Path, title: str, cost_label: str,
                    dense_acc: float | None = None, series: str = "method") -> None:
    """The same picture as the HTML page: log cost axis, accuracy zoomed to the fronts, staircases."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    from search.results.svgfront import FrontAxes

    fig, ax = plt.subplots(figsize=(8, 5.5))
    cmap = plt.get_cmap("tab10")
    for i, (method, pts) in enumerate(sorted(_series(points).items())):
        color = cmap(i % 10)
        ax.scatter([p.cost for p in pts], [p.acc for p in pts], color=color, alpha=0.35, s=18)
        f = front(pts)
        ax.step([p.cost for p in f], [p.acc for p in f], where="post", color=color, marker="o",
                label=f"{method} front")
    combined = front(points)
    ax.step([p.cost for p in combined], [p.acc for p in combined], "k--", where="post", lw=1, label="combined front")
    if dense_acc is not None:
        ax.axhline(dense_acc, color="grey", lw=0.8, ls=":", label=f"dense ({dense_acc:.3f})")
    axes = FrontAxes(points, dense_acc) if points else None
    if axes is not None:
        if axes.log:  # ticks at 1, 2, 5 x 10^k written as plain numbers, as in the HTML page
            from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_locator(FixedLocator(axes.xt))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlim(axes.x0, axes.x1)
        ax.set_ylim(axes.yt[0], axes.yt[-1])
    ax.set_xlabel(cost_label + (" (log scale)" if axes is not None and axes.log else ""))
    ax.set_ylabel("validation accuracy")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_fronts_html(points: Sequence[Point], path: Path, title: str, cost_label: str,
                     dense_acc: float | None = None, series: str = "method") -> None:
    """Inline SVG, no script (search.results.svgfront): draws inside MLflow's sandboxed artifact viewer."""
    from search.results.svgfront import fronts_html

    path.write_text(fronts_html(points, title, cost_label, dense_acc, series), encoding="utf-8")


def plot_hypervolume_png(curve: Sequence[float] | dict[str, Sequence[float]], path: Path, title: str) -> None:
    """Hypervolume after each completed trial: one curve, or one per search (search.results.compare)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = curve if isinstance(curve, dict) else {"": curve}
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker=".", label=label or None)
    ax.set_xlabel("trials completed")
    ax.set_ylabel("hypervolume")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
