"""After the trials: the Pareto front from what MLflow recorded, tags, parent artifacts, the
console table. MLflow is the source of truth, so a resumed search reports every trial."""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from mlflow.tracking import MlflowClient

from mlflow_config import artifacts, tracking
from search.results.pareto import Point, format_table, front, hypervolume, hypervolume_curve, write_csv
from search.results.plots import plot_fronts_html, plot_fronts_png, plot_hypervolume_png
from trainables.measure import TEST_ACC, VAL_ACC

logger = logging.getLogger(__name__)

FRONT_TABLE = "pareto_table.json"
TABLE_COLUMNS = ("method", VAL_ACC, TEST_ACC, "size_bytes", "size_ratio", "nonzero_params", "params",
                 "flops", "latency_ms", "cost_s", "run_id")


def collect_points(runs, metric: str, dense_cost: float) -> list[Point]:
    pts = []
    for r in sorted(runs, key=lambda r: r.info.start_time):
        m = r.data.metrics
        if r.info.status == "FINISHED" and VAL_ACC in m and metric in m:
            pts.append(Point(r.info.run_id, m[VAL_ACC], m[metric] / dense_cost, r.data.tags.get("method", ""),
                             r.info.run_name or "", m.get(TEST_ACC)))
    return pts


def finalize(client: MlflowClient, experiment_id: str, parent_run_id: str, metric: str, dense: dict[str, float],
             title: str, failed: int | None = None) -> list[dict]:
    """Tags the front, logs the summary, table and plots to the search's run, and the summary and
    table to this module's logger. `failed`: the failed trials the budget counts (Optuna's;
    default: the FAILED child runs)."""
    runs = tracking.child_runs(client, experiment_id, parent_run_id)
    dense_cost = dense[metric]
    points = collect_points(runs, metric, dense_cost)
    combined = {p.key for p in front(points)}
    methods = sorted({p.method for p in points})
    per_method = {m: front([p for p in points if p.method == m]) for m in methods}
    on_method_front = {p.key for f in per_method.values() for p in f}
    for r in runs:
        rid = r.info.run_id
        tracking.set_tags(client, rid, {"pareto": str(rid in combined).lower(),
                                        "pareto_method": str(rid in on_method_front).lower()})
    by_id = {r.info.run_id: r for r in runs}
    rows = []
    for p in sorted((p for p in points if p.key in combined), key=lambda p: p.cost):
        m = by_id[p.key].data.metrics
        rows.append({"method": p.method, **{c: m.get(c) for c in TABLE_COLUMNS[1:-1]}, "run_id": p.key})
    if failed is None:
        failed = sum(r.info.status == "FAILED" for r in runs)
    summary = {"hypervolume": hypervolume(points), "front_size": len(combined), "trials_finished": len(points),
               "trials_failed": failed}
    summary.update({f"hypervolume.{m}": hypervolume(f) for m, f in per_method.items()})
    tracking.log_metrics(client, parent_run_id, summary)
    for i, hv in enumerate(hypervolume_curve(points)):
        tracking.log_metrics(client, parent_run_id, {"hypervolume_by_trial": hv}, step=i + 1)
    cost_label = f"{metric} / dense {metric}"
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_csv(rows, d / "pareto.csv")
        plot_fronts_png(points, d / "pareto.png", title, cost_label, dense.get(VAL_ACC))
        plot_fronts_html(points, d / "pareto.html", title, cost_label, dense.get(VAL_ACC))
        plot_hypervolume_png(hypervolume_curve(points), d / "hypervolume.png", f"{title}: hypervolume")
        for name in ("pareto.csv", "pareto.png", "pareto.html", "hypervolume.png"):
            client.log_artifact(parent_run_id, str(d / name))
    artifacts.log_json(client, parent_run_id, rows, None, "pareto.json")
    log_front_table(client, parent_run_id, rows, by_id)
    tracking.set_tags(client, parent_run_id, {"mlflow.note.content": front_markdown(rows, by_id, experiment_id,
                                                                                      dense, metric)})
    logger.info(f"\nPareto front ({len(rows)} of {len(points)} finished trials, {failed} failed; "
                f"hypervolume {summary['hypervolume']:.4f}):")
    logger.info(format_table(rows, TABLE_COLUMNS))
    return rows


WITHIN_DENSE = 0.01  # "within 1 point of dense": the question a practitioner asks first


def front_markdown(rows: list[dict], runs_by_id: dict, experiment_id: str, dense: dict[str, float],
                   metric: str) -> str:
    """The search run's description (MLflow shows it on the run page, Markdown): the smallest trial
    within 1 point of dense validation accuracy, then the combined front, each row linking to its
    trial in the training view."""
    from search.results.ui import run_link

    def name(row):
        return f"[{runs_by_id[row['run_id']].info.run_name}]({run_link(experiment_id, row['run_id'])})"

    def num(v, fmt):
        return "" if v is None else format(v, fmt)

    dense_acc = dense.get(VAL_ACC)
    lines = [f"**Pareto front**: {len(rows)} trials, cheapest first (validation chose them; test_acc is reported "
             f"only). Dense model: val_acc {num(dense_acc, '.4f')}, {metric} {num(dense.get(metric), ',.0f')}.", ""]
    close = [r for r in rows if dense_acc is not None and r.get(VAL_ACC, 0) >= dense_acc - WITHIN_DENSE]
    if close:
        r = min(close, key=lambda r: r.get("size_ratio") or float("inf"))
        lines += [f"Smallest within 1 point of dense val_acc: {name(r)} ({r['method']}), "
                  f"{num(r.get('size_ratio'), '.1%')} of dense size, val_acc {num(r.get(VAL_ACC), '.4f')}, "
                  f"test_acc {num(r.get(TEST_ACC), '.4f')}.", ""]
    lines += ["| trial | method | val_acc | test_acc | size of dense | params |", "|---|---|---|---|---|---|"]
    lines += [f"| {name(r)} | {r['method']} | {num(r.get(VAL_ACC), '.4f')} | {num(r.get(TEST_ACC), '.4f')} | "
              f"{num(r.get('size_ratio'), '.1%')} | {num(r.get('params'), ',.0f')} |" for r in rows]
    return "\n".join(lines)


def log_front_table(client: MlflowClient, parent_run_id: str, rows: list[dict], runs_by_id: dict) -> None:
    """The front as an MLflow table (`pareto_table.json`): the run page's artifact viewer shows it as
    a sortable table, and it can be read back with mlflow.load_table. Run names make rows findable."""
    columns = ("run_name", "run_id", *TABLE_COLUMNS[:-1])
    named = [{**r, "run_name": runs_by_id[r["run_id"]].info.run_name} for r in rows]
    client.log_table(parent_run_id, {c: [_short(r[c]) for r in named] for c in columns}, FRONT_TABLE)


def _short(v):
    """Six significant digits: readable in the UI's table; exact values stay in the runs' metrics."""
    return float(f"{v:.6g}") if isinstance(v, float) else v
