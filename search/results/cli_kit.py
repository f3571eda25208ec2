"""What every command line of the project shares: the one-line parser, the exit-2 handling,
the store (--home / --tracking-uri) and data (--dataset / --data-dir) arguments, and the
writable-destination check. `search.run` and the tools in this package all use it, so a bad
flag reads the same everywhere: one `error:` line naming the value, exit 2, nothing started."""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

from mlflow.tracking import MlflowClient

from mlflow_config import stores, tracking
from mlflow_config.secrets import redact
from trainables.data import DATASETS

DEFAULT_HOME = Path(".prune-search")  # SearchConfig's default, so the tools find the same store
USAGE_EXIT = 2
# Search names become Ray Tune folders, MLflow run names and Optuna study names.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
NAME_RULE = "1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"


class UsageError(Exception):
    """Bad user input or an unusable store/run: printed as one line, exit 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the whole usage on a bad flag; we print ONE line and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see --help)")


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type when empty), cut to `limit`, passwords
    masked: what a one-line error quotes from a library's multi-line message."""
    text = str(exc).strip()
    return redact(text.splitlines()[0][:limit]) if text else type(exc).__name__


def fail(exc: BaseException) -> int:
    """Print `exc` as the one error line (passwords masked) and return the usage exit code."""
    print(f"error: {redact(str(exc))}", file=sys.stderr)
    return USAGE_EXIT


def run_main(body: Callable[[], int], usage_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Run a CLI body; UsageError (and `usage_errors`) become one line and exit 2."""
    try:
        return body()
    except (UsageError, tracking.TrackingError, *usage_errors) as exc:
        return fail(exc)


# The project's top-level loggers: each module logs to logging.getLogger(__name__) below them.
PROJECT_LOGGERS = ("search", "trainables", "pruners", "mlflow_config")


class _LineHandler(logging.Handler):
    """Each record as its bare message, one line to `write` (default: print to the current stdout)."""

    def __init__(self, write: Callable[[str], None] | None = None):
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter("%(message)s"))
        self.write = write or (lambda line: print(line, flush=True))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write(self.format(record))
        except Exception:  # noqa: BLE001 - logging's convention: a failing handler never raises
            self.handleError(record)


@contextlib.contextmanager
def printed_logs(write: Callable[[str], None] | None = None) -> Iterator[logging.Handler]:
    """For the duration of a command: the project's log records (INFO and up) printed to stdout as
    bare messages, the lines the CLI shows; removed afterwards. A project logger left at its
    default level is raised to INFO meanwhile; one a user set (logging.getLogger("trainables")
    .setLevel(logging.WARNING)) keeps its level. `write`: another destination for the lines."""
    handler = _LineHandler(write)
    loggers = [logging.getLogger(name) for name in PROJECT_LOGGERS]
    raised = [lg for lg in loggers if lg.level == logging.NOTSET and lg.getEffectiveLevel() > logging.INFO]
    for lg in loggers:
        lg.addHandler(handler)
    for lg in raised:
        lg.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
        for lg in raised:
            lg.setLevel(logging.NOTSET)


def quiet_progress_bars() -> None:
    """CLI mains only: MLflow's download progress bars would bury the one result line."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def add_store_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", type=Path, default=None,
                        help=f"work folder of the search (MLflow DB, caches; default: {DEFAULT_HOME})")
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (MLFLOW_TRACKING_URI wins; default: SQLite in --home)")


def add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=DATASETS, default=None,
                        help="dataset to rebuild the splits from (default: the search's)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="where that dataset lives, if it moved since the search (default: the search's)")


def open_store(tracking_uri: str | None, home: Path | None) -> tuple[MlflowClient, str]:
    """The client, and the URI as messages may show it (password masked)."""
    uri = store_uri(tracking_uri, home)
    return tracking.client(uri), redact(uri)


def store_uri(tracking_uri: str | None, home: Path | None) -> str:
    """The searches' tracking URI, checked to exist (without opening it: that takes seconds)."""
    uri = tracking.resolve_tracking_uri(tracking_uri, (home or DEFAULT_HOME).resolve())
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        # MLflow would silently create an empty database: say where we looked instead.
        raise UsageError(f"--home/--tracking-uri: no MLflow store at {redact(uri)}; expected the --home of a "
                         "finished search (python -m search.run) or its --tracking-uri")
    try:
        tracking.check_reachable(uri)
    except tracking.TrackingError as exc:
        raise UsageError(str(exc)) from None
    if stores.scheme(uri) in stores.DATABASE_SCHEMES:  # a database server: answering within seconds
        reason = stores.unreachable(uri)
        if reason is not None:
            raise UsageError(f"--tracking-uri: the MLflow database {redact(uri)} cannot be reached ({reason}); "
                             "expected a running database server and its URL")
    return uri


def check_writable(flag: str, path: Path, *, file: bool = False) -> None:
    """`path` (a folder, or with file=True a file to write) can be created or written. Tries a
    temporary file in the nearest existing folder and removes it: permissions alone would not
    tell (root, read-only file systems)."""
    path = Path(path).expanduser().absolute()
    kind = "a file path" if file else "a folder"
    if path.exists() and (path.is_dir() if file else not path.is_dir()):
        raise UsageError(f"{flag}: {str(path)!r} is {'a folder' if file else 'a file'}; expected {kind} "
                         "you can write")
    existing = path.parent if file else path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{flag}: {str(path)!r} cannot be created ({existing} is a file); expected {kind} you "
                         "can write")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{flag}: {str(path)!r} is not writable ({exc.strerror} in {existing}); expected {kind} "
                         "you can write") from None
