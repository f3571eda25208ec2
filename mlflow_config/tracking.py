"""Where runs go and how a search is laid out in MLflow.

Tracking URI: MLFLOW_TRACKING_URI > the search config (`--tracking-uri`) > an embedded default,
a SQLite file plus an artifact folder, both at absolute paths (Ray workers change directory).
One experiment per project/model/dataset; one parent run per search; one nested child run per
trial.
"""
from __future__ import annotations

import base64
import contextlib
import os
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from mlflow_config import environment, stores
from mlflow_config.secrets import redact, split_userinfo

MAX_PARAM_CHARS = 6000  # MLflow's limit on a param value
BATCH = 100  # MLflow's limit on params per log_batch call
# Without it MLflow 3's UI opens an experiment on its GenAI overview (traces, evaluations); with it,
# on the runs table and its chart view, where training runs belong.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


class TrackingError(Exception):
    """The tracking server cannot be used; the CLI turns it into one line and exit 2."""


def resolve_tracking_uri(configured: str | None, home: Path) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI") or configured
    return stores.normalize(uri) if uri else f"sqlite:///{(home / 'mlflow.db').resolve()}"


def default_artifact_location(home: Path) -> str:
    return (home / "mlartifacts").resolve().as_uri()


AUTH_ENV = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")  # where MLflow reads basic-auth credentials


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def use_credentials(uri: str) -> str:
    """An HTTP(S) URI with user:password@ -> the same URI without them, the credentials set where
    MLflow reads them (MLFLOW_TRACKING_USERNAME / _PASSWORD) for this process and the Ray workers
    it starts. Inside the URI they would show up in MLflow's error messages."""
    if not is_server(uri):
        return uri  # a database URL: SQLAlchemy reads the password from the URL itself
    clean, user, password = split_userinfo(uri)
    if user is not None:
        os.environ[AUTH_ENV[0]] = user
    if password is not None:
        os.environ[AUTH_ENV[1]] = password
    return clean


def client(uri: str) -> MlflowClient:
    """The MLflow client for `uri`, its basic-auth credentials moved where MLflow reads them."""
    return MlflowClient(use_credentials(uri))


def credentials_restored() -> contextlib.AbstractContextManager[None]:
    """Puts MLFLOW_TRACKING_USERNAME / _PASSWORD back as they were (a search run in-process,
    e.g. by a test, must not leave another server's credentials behind)."""
    return environment.restored(AUTH_ENV)


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Fail fast, before anything is started, when a remote tracking server doesn't answer. Basic
    auth as MLflow would send it (credentials from the URI, else the environment)."""
    if not is_server(uri):
        return
    clean, user, password = split_userinfo(uri)
    user = user if user is not None else os.environ.get(AUTH_ENV[0])
    password = password if password is not None else os.environ.get(AUTH_ENV[1])
    request = urllib.request.Request(clean.rstrip("/") + "/health")
    if user is not None:
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    shown = redact(uri)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            if resp.status != 200:
                raise TrackingError(f"MLflow server {shown} answered /health with HTTP {resp.status}")
    except urllib.error.HTTPError as exc:
        hint = "; check the user and password" if exc.code in (401, 403) else ""
        raise TrackingError(f"MLflow server {shown} answered /health with HTTP {exc.code}{hint}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise TrackingError(f"MLflow server {shown} is unreachable ({redact(str(exc))}); start it or pass another "
                            "--tracking-uri") from None


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """The experiment, marked as model development (also when an older search created it)."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        return client.create_experiment(name, artifact_location=artifact_location, tags=EXPERIMENT_TAGS)
    if any(exp.tags.get(k) != v for k, v in EXPERIMENT_TAGS.items()):
        for k, v in EXPERIMENT_TAGS.items():
            client.set_experiment_tag(exp.experiment_id, k, v)
    return exp.experiment_id


def start_run(client: MlflowClient, experiment_id: str, name: str, tags: Mapping[str, str] | None = None,
              parent_run_id: str | None = None) -> str:
    all_tags = dict(tags or {})
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id  # what makes the UI nest it
    run = client.create_run(experiment_id, run_name=name, tags=all_tags)
    return run.info.run_id


def log_params(client: MlflowClient, run_id: str, params: Mapping[str, object]) -> None:
    items = [Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in params.items()]
    for i in range(0, len(items), BATCH):
        client.log_batch(run_id, params=items[i : i + BATCH])


def log_metrics(client: MlflowClient, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
    import time

    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
    for i in range(0, len(items), BATCH):
        client.log_batch(run_id, metrics=items[i : i + BATCH])


def set_tags(client: MlflowClient, run_id: str, tags: Mapping[str, str]) -> None:
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def finish_run(client: MlflowClient, run_id: str, ok: bool, reason: str | None = None, killed: bool = False) -> None:
    """FINISHED, or FAILED with a `failure_reason` tag; KILLED for an interrupted search."""
    if reason:
        set_tags(client, run_id, {"failure_reason": reason[:5000]})
    client.set_terminated(run_id, status="FINISHED" if ok else ("KILLED" if killed else "FAILED"))


def child_runs(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list:
    return client.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'", max_results=50000
    )


@contextlib.contextmanager
def fluent_tracking_uri(uri: str) -> Iterator[None]:
    """mlflow.<flavor>.log_model reads the process-global tracking URI, and set_tracking_uri also
    writes MLFLOW_TRACKING_URI into the environment: both are put back afterwards."""
    # MLflow's only private use here: mlflow.set_tracking_uri has no undo (tests/test_private_apis.py).
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with environment.restored(("MLFLOW_TRACKING_URI",)), _use_tracking_uri(uri):
        yield
