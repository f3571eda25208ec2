"""`prune-search ui [--home H] [--port P] [--host 127.0.0.1]`: the MLflow UI for the searches' store.

Runs `mlflow server` on the search's own SQLite store and artifact folder. Binds to 127.0.0.1
unless --host says otherwise: the server has no authentication. The command is an argument
list, never a shell string, so no path or host can inject shell syntax.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import sys
from pathlib import Path

from mlflow_config.secrets import redact
from search.results.cli_kit import DEFAULT_HOME, OneLineParser, UsageError, add_store_args, fail, store_uri

HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
# MLflow 3.17's UI opens an experiment in the GenAI or the "Model training" view from the URL's
# workflowType (or the browser's saved toggle), not from the experiment's mlflow.experimentKind tag:
# every link this project prints carries it, so it opens on the runs table.
RUNS_VIEW = "{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


RUN_VIEW = "{base}#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def runs_link(base: str, experiment_id: str) -> str:
    return RUNS_VIEW.format(base=base.rstrip("/"), experiment_id=experiment_id)


LOCAL_UI = "http://127.0.0.1:5000"  # where search.results.ui serves a local store by default


def ui_base(tracking_uri: str) -> str:
    """Where the UI for `tracking_uri` is: the server itself (password masked), else search.results.ui's."""
    return redact(tracking_uri) if tracking_uri.startswith(("http://", "https://")) else LOCAL_UI


def run_link(experiment_id: str, run_id: str, base: str = "") -> str:
    """A run's page in the training view; with no base, relative to the UI showing it (for
    Markdown inside MLflow: a description's links then work whatever host serves the UI)."""
    return RUN_VIEW.format(base=base.rstrip("/") + "/" if base else "", experiment_id=experiment_id, run_id=run_id)


def search_links(home: Path, tracking_uri: str, base: str) -> list[str]:
    """One line per experiment holding searches recorded in `home` (read from the search records,
    without opening the store): their names and the link to the experiment's runs."""
    by_experiment: dict[str, list[str]] = {}
    for path in sorted((home / "searches").glob("*.json")):
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a damaged record only costs its link
        if rec.get("tracking_uri") == tracking_uri:
            by_experiment.setdefault(str(rec["experiment_id"]), []).append(rec["name"])
    return [f"  {', '.join(names)}: {runs_link(base, exp)}" for exp, names in by_experiment.items()]


def build_parser(prog: str = "prune-search ui") -> OneLineParser:
    parser = OneLineParser(
        prog=prog,
        description="Start the MLflow UI (mlflow server) on the searches' store and print its address. "
        "Open the experiment, then a search's run for pareto.png / pareto.html; filter trials with "
        "tags.pareto = 'true'. Ctrl-C stops it.",
        epilog="Example: prune-search ui --home .prune-search --port 5000")
    add_store_args(parser)
    parser.add_argument("--port", type=int, default=5000, help="port to listen on, 1-65535 (default: 5000)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default: 127.0.0.1, this machine only; 0.0.0.0 exposes the "
                        "unauthenticated UI to the network)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (default: 1)")
    return parser


def check_host_port(host: str, port: int) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not HOSTNAME.fullmatch(host):
            raise UsageError(f"--host: {host!r} is not accepted; expected an IP address or host name, "
                                 "e.g. 127.0.0.1") from None
    if not 1 <= port <= 65535:
        raise UsageError(f"--port: {port} is not accepted; expected a port number 1-65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UsageError(f"--port: cannot listen on {host}:{port} ({exc.strerror}); expected a free port "
                                 "on an address of this machine") from None


def server_command(home: Path, host: str, port: int, workers: int) -> list[str]:
    """The argument list; the store's URI (which may hold a password) goes in the environment
    (server_env), never on a command line every user of the machine can read with ps."""
    # Artifacts of new experiments go beside the search's own (existing ones keep their location).
    artifact_root = (home / "mlartifacts").resolve().as_uri()
    return [sys.executable, "-m", "mlflow", "server", "--default-artifact-root", artifact_root, "--host", host,
            "--port", str(port), "--workers", str(workers)]


def server_env(tracking_uri: str) -> dict[str, str]:
    return {**os.environ, "MLFLOW_BACKEND_STORE_URI": tracking_uri}  # mlflow server's own variable


def main(argv: list[str] | None = None, prog: str = "prune-search ui") -> int:
    try:
        args = build_parser(prog).parse_args(argv)
        if args.workers < 1:
            raise UsageError(f"--workers: {args.workers} is not accepted; expected a positive integer")
        check_host_port(args.host, args.port)
        uri = store_uri(args.tracking_uri, args.home)
        if uri.startswith(("http://", "https://")):
            raise UsageError(f"--tracking-uri: {uri} is already an MLflow server; open it in a browser")
    except UsageError as exc:
        return fail(exc)
    cmd = server_command(args.home or DEFAULT_HOME, args.host, args.port, args.workers)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    base = f"http://{shown}:{args.port}"
    links = search_links((args.home or DEFAULT_HOME).resolve(), uri, base)
    print(f"MLflow UI for {redact(uri)}\n  {base}  (ready in ~10 s; Ctrl-C stops it)", flush=True)
    if links:
        print("Searches (each link opens the experiment's runs, Model training view):", *links, sep="\n", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {args.host}: anyone who can reach it can read and change the runs",
              file=sys.stderr, flush=True)
    # Become the server (same PID): Ctrl-C and SIGTERM reach it directly, nothing is orphaned.
    os.execve(cmd[0], cmd, server_env(uri))
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
