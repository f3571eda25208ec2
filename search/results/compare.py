"""`prune-search compare SEARCH [SEARCH ...] [--size-budget 0.1]`: overlay several searches'
Pareto fronts and compare them.

Each search is a parent run (tags role=search); its trials are its child runs. Costs are
normalized by each search's own dense baseline (`baseline_<metric>` on the parent), so searches
share one scale. The overlay (PNG + HTML), a CSV/JSON table and one metric per search go to a
new MLflow run tagged role=compare in the first search's experiment.
"""
from __future__ import annotations

import re
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from search.results.cli_kit import NAME_PATTERN, NAME_RULE, OneLineParser, UsageError, add_store_args, fail, open_store
from search.results.ui import run_link, ui_base
from trainables.measure import OBJECTIVE_METRIC, OBJECTIVES, TEST_ACC, VAL_ACC

COLUMNS = ("search", "trials", "front_points", "hypervolume", "hv_at_n", "best_val_acc", "best_test_acc",
           "best_size_ratio", "best_run_id", "parent_run_id")


@dataclass
class Compared:
    name: str
    parent: Run
    points: list  # search.results.pareto.Point, method = the search's name (one overlay series per search)
    row: dict


def build_parser(prog: str = "prune-search compare") -> OneLineParser:

    parser = OneLineParser(
        prog=prog,
        description="Overlay the Pareto fronts of several searches in one plot (PNG + interactive HTML), log it as "
        "an MLflow run (tag role=compare) in the first search's experiment, and print per search: "
        "hypervolume, number of front points, and the best val_acc among trials with size_ratio <= "
        "--size-budget.",
        epilog="Example: prune-search compare digits-tpe digits-nsga2 --size-budget 0.1")
    parser.add_argument("searches", nargs="+", metavar="SEARCH", help="search name (--name of search.run) or "
                        "its parent run id")
    parser.add_argument("--size-budget", type=float, default=0.1,
                        help="size_ratio limit for the 'best val_acc' column (default: 0.1 = 10%% of dense)")
    parser.add_argument("--objective", choices=OBJECTIVES, default=None,
                        help="cost axis of the fronts (default: the first search's objective)")
    add_store_args(parser)
    return parser


def check_ref(ref: str) -> None:

    if not (NAME_PATTERN.fullmatch(ref) or re.fullmatch(r"[0-9a-f]{32}", ref)):
        shown = ref if len(ref) <= 60 else ref[:57] + "..."
        raise UsageError(f"SEARCH: {shown!r} is not accepted; expected a search name ({NAME_RULE}) or a "
                             "parent run id (32 hex digits)")


def find_search(client: MlflowClient, ref: str, uri: str) -> Run:
    exps = [e.experiment_id for e in client.search_experiments()]
    quoted = ref.replace("'", "")  # a name never contains quotes (search.config forbids them)
    runs = client.search_runs(exps, f"tags.role = 'search' and tags.search = '{quoted}'") if exps else []
    if not runs and re.fullmatch(r"[0-9a-f]{32}", ref):
        try:
            runs = [r for r in [client.get_run(ref)] if r.data.tags.get("role") == "search"]
        except MlflowException:
            runs = []
    if len(runs) != 1:
        known = sorted({r.data.tags.get("search", "?") for r in client.search_runs(exps, "tags.role = 'search'")}) \
            if exps else []
        raise UsageError(f"search {ref!r} not found in {uri}; expected a search name or parent run id "
                             f"(known: {', '.join(known[:20]) or 'none'})")
    return runs[0]


def compare_one(client: MlflowClient, parent: Run, metric: str, size_budget: float) -> Compared:
    from mlflow_config.tracking import child_runs
    from search.results.pareto import front, hypervolume
    from search.results.report import collect_points

    name = parent.data.tags["search"]
    children = child_runs(client, parent.info.experiment_id, parent.info.run_id)
    pts = collect_points(children, metric, parent.data.metrics[f"baseline_{metric}"])
    pts = [replace(p, method=name) for p in pts]  # the series are the searches
    fits = [r for r in children if r.info.status == "FINISHED" and r.data.metrics.get("size_ratio", 2) <= size_budget]
    best = max(fits, key=lambda r: r.data.metrics.get(VAL_ACC, -1), default=None)
    row = {"search": name, "trials": len(pts), "front_points": len(front(pts)), "hypervolume": hypervolume(pts),
           "hv_at_n": "-",  # set by equal_trials: the hypervolume of the first n trials, n the same for all
           "best_val_acc": best.data.metrics.get(VAL_ACC) if best else "-",
           "best_test_acc": best.data.metrics.get(TEST_ACC, "-") if best else "-",
           "best_size_ratio": best.data.metrics.get("size_ratio") if best else "-",
           "best_run_id": best.info.run_id if best else "-", "parent_run_id": parent.info.run_id}
    return Compared(name, parent, pts, row)


def equal_trials(compared: list[Compared]) -> int:
    """Fills each row's hv_at_n: hypervolume over the first n trials in completion order, n the
    smallest trial count, so a 50-trial and a 12-trial search are compared at equal budgets."""
    from search.results.pareto import hypervolume

    n = min(len(c.points) for c in compared)
    for c in compared:
        c.row["hv_at_n"] = hypervolume(c.points[:n])
    return n


def caveats(compared: list[Compared]) -> list[str]:
    """What makes the rows less comparable than they look: other budgets, other validation sets,
    and how coarse a validation accuracy is (one image is 1/val_images of it)."""
    out = []
    params = {c.name: c.parent.data.params for c in compared}
    budgets = {name: p.get("budget") for name, p in params.items()}
    if len(set(budgets.values())) > 1:
        out.append("budgets differ (" + ", ".join(f"{n}: {b}" for n, b in budgets.items()) + "): compare hv_at_n, "
                   "the hypervolume at equal trial counts, not hypervolume")
    sizes = {name: p.get("val_images") for name, p in params.items()}
    if len({v for v in sizes.values() if v}) > 1:
        out.append("validation sets differ in size (" + ", ".join(f"{n}: {v}" for n, v in sizes.items()) + ")")
    for name, v in sizes.items():
        if v and int(v) > 0:
            out.append(f"{name}: one validation image is {100 / int(v):.2g} points of val_acc ({v} images); "
                       "fronts a few images apart are within noise")
    return out


def log_compare_run(client: MlflowClient, compared: list[Compared], metric: str, size_budget: float) -> str:
    from mlflow_config import tracking

    names = [c.name for c in compared]
    exp_id = compared[0].parent.info.experiment_id
    run_id = tracking.start_run(client, exp_id, f"compare: {' vs '.join(names)}"[:250],
                                tags={"role": "compare", "searches": ",".join(names)})
    try:
        _log_comparison(client, run_id, compared, metric, size_budget)
    except BaseException as exc:  # the run never stays RUNNING: FAILED with the reason
        tracking.finish_run(client, run_id, ok=False, reason=f"{type(exc).__name__}: {exc}")
        raise
    tracking.finish_run(client, run_id, ok=True)
    return run_id


def _log_comparison(client: MlflowClient, run_id: str, compared: list[Compared], metric: str,
                    size_budget: float) -> None:
    from mlflow_config import artifacts, tracking
    from search.results.pareto import format_table, hypervolume_curve, write_csv
    from search.results.plots import plot_fronts_html, plot_fronts_png, plot_hypervolume_png

    names = [c.name for c in compared]
    tracking.log_params(client, run_id, {"searches": ",".join(names), "objective_metric": metric,
                                         "size_budget": size_budget,
                                         "parent_run_ids": ",".join(c.parent.info.run_id for c in compared)})
    for c in compared:  # metric names allow only [\w./ -]: a search name may hold other characters
        key = re.sub(r"[^\w./ -]", "_", c.name)
        tracking.log_metrics(client, run_id, {f"hypervolume.{key}": c.row["hypervolume"],
                                              f"front_points.{key}": c.row["front_points"]})
        if c.row["best_val_acc"] != "-":
            tracking.log_metrics(client, run_id, {f"best_val_acc.{key}": c.row["best_val_acc"]})
    points = [p for c in compared for p in c.points]
    title, label = f"Pareto fronts: {' vs '.join(names)}", f"{metric} / dense {metric}"
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        rows = [c.row for c in compared]
        write_csv(rows, d / "compare.csv")
        (d / "compare.txt").write_text(format_table(rows, COLUMNS) + "\n")
        plot_fronts_png(points, d / "compare.png", title, label, series="search")
        plot_fronts_html(points, d / "compare.html", title, label, series="search")
        plot_hypervolume_png({c.name: hypervolume_curve(c.points) for c in compared}, d / "compare_hypervolume.png",
                             f"hypervolume by trial: {' vs '.join(names)}")
        for f in ("compare.csv", "compare.txt", "compare.png", "compare.html", "compare_hypervolume.png"):
            client.log_artifact(run_id, str(d / f))
    artifacts.log_json(client, run_id, [c.row for c in compared], None, "compare.json")


def main(argv: list[str] | None = None, prog: str = "prune-search compare") -> int:
    from search.results.pareto import format_table

    try:
        args = build_parser(prog).parse_args(argv)
        if not args.size_budget > 0:
            raise UsageError(f"--size-budget: {args.size_budget!r} is not accepted; expected a size_ratio > 0")
        for ref in args.searches:
            check_ref(ref)
        client, uri = open_store(args.tracking_uri, args.home)
        parents = [find_search(client, ref, uri) for ref in args.searches]
    except UsageError as exc:
        return fail(exc)
    objective = args.objective or parents[0].data.params.get("objective", "size")
    metric = OBJECTIVE_METRIC[objective]
    compared = [compare_one(client, p, metric, args.size_budget) for p in parents]
    n = equal_trials(compared)
    run_id = log_compare_run(client, compared, metric, args.size_budget)
    print(f"Fronts on {metric} / dense {metric}; hv_at_n: hypervolume of each search's first {n} trials; best "
          f"val_acc (and its test_acc) among trials with size_ratio <= {args.size_budget:g}:")
    print(format_table([c.row for c in compared], COLUMNS))
    notes = caveats(compared)
    if notes:
        print("\n" + "\n".join(f"note: {line}" for line in notes))
    experiment = compared[0].parent.info.experiment_id
    print(f"\nOverlay logged as MLflow run {run_id} (tag role=compare): compare.png, compare.html, "
          f"compare_hypervolume.png, compare.csv\n  {run_link(experiment, run_id, ui_base(uri))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
