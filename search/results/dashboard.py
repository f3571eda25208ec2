"""`prune-search dashboard [--home H] [--port P] [--host 127.0.0.1]`: optuna-dashboard on the searches' studies.

Each search is one Optuna study (named after the search) in `--home/optuna.db`, or in the RDB a
search was given with `--optuna-storage`. optuna-dashboard 0.21 shows, for a multi-objective study:
the Pareto-front plot (axes named after the objectives, val_acc and the size metric), the
optimization history, parameter importances, and each trial's parameters and user attributes
(its MLflow run as a link, `mlflow_run`). The study's user attributes say what the objectives mean
and link the search's MLflow run. The hypervolume history is MLflow's `hypervolume.png`, not
here. Binds 127.0.0.1 unless --host says otherwise.
"""
from __future__ import annotations

import sys
from pathlib import Path

from mlflow_config import stores
from mlflow_config.secrets import redact
from search.results.cli_kit import DEFAULT_HOME, OneLineParser, UsageError, fail
from search.results.ui import check_host_port


def build_parser(prog: str = "prune-search dashboard") -> OneLineParser:
    parser = OneLineParser(
        prog=prog,
        description="Start optuna-dashboard on the searches' Optuna studies (one study per search) and print "
        "each study's address. A study's page has the Pareto front (val_acc vs the size objective, named axes), "
        "the optimization history, parameter importances and the trials (each with its MLflow run link in "
        "its user attributes); the hypervolume history is the search run's hypervolume.png in MLflow. "
        "Ctrl-C stops it.",
        epilog="Example: prune-search dashboard --home .prune-search --port 8080")
    parser.add_argument("--home", type=Path, default=None,
                        help=f"work folder of the searches (holds optuna.db; default: {DEFAULT_HOME})")
    parser.add_argument("--optuna-storage", default=None,
                        help="the Optuna RDB URL the searches were run with (default: sqlite:///HOME/optuna.db)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on, 1-65535 (default: 8080)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default: 127.0.0.1, this machine only; 0.0.0.0 exposes the "
                        "unauthenticated dashboard, which can also delete studies, to the network)")
    return parser


def storage_url(optuna_storage: str | None, home: Path | None) -> str:
    if optuna_storage:
        return stores.normalize(optuna_storage)
    db = (home or DEFAULT_HOME).resolve() / "optuna.db"
    if not db.is_file():  # Optuna would silently create an empty database
        raise UsageError(f"--home: no Optuna study database at {db}; expected the --home of a search "
                             "(python -m search.run), or --optuna-storage URL if the search used one")
    return f"sqlite:///{db}"


def list_studies(url: str) -> list[tuple[str, int, int]]:
    """(name, study id, trials) of every study; a storage that cannot be opened is one line."""
    import optuna

    try:
        storage = optuna.storages.get_storage(url)
        summaries = optuna.study.get_all_study_summaries(storage, include_best_trial=False)
        return [(s.study_name, storage.get_study_id_from_name(s.study_name), s.n_trials) for s in summaries]
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy, driver and URL errors alike
        raise UsageError(f"--optuna-storage: cannot open {redact(url)} ({type(exc).__name__}); expected an Optuna "
                             "storage URL such as sqlite:///PATH/optuna.db or postgresql://USER@HOST/DB") from None


def main(argv: list[str] | None = None, prog: str = "prune-search dashboard") -> int:
    try:
        args = build_parser(prog).parse_args(argv)
        check_host_port(args.host, args.port)
        url = storage_url(args.optuna_storage, args.home)
        studies = list_studies(url)
    except UsageError as exc:
        return fail(exc)
    base = f"http://{f'[{args.host}]' if ':' in args.host else args.host}:{args.port}"
    print(f"optuna-dashboard for {redact(url)}\n  {base}/dashboard  (Ctrl-C stops it)", flush=True)
    for name, study_id, n_trials in studies:
        print(f"  study {name} ({n_trials} trials): {base}/dashboard/studies/{study_id}", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}: anyone who can reach it can read and delete studies",
              file=sys.stderr, flush=True)
    from optuna_dashboard import run_server

    run_server(url, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
