"""A search against a real PostgreSQL server, the way a cluster deployment runs it: PostgreSQL is
MLflow's backend store (behind `mlflow server`, which also proxies the artifacts) and Optuna's
storage. The test starts a private PostgreSQL instance in a temporary folder (never the system
cluster) and its own MLflow server, and tears both down afterwards.

Needs PostgreSQL's server binaries (`bash .ci/install-postgres.sh`) and psycopg2 (the `test`
extras); it is skipped with that reason when either is missing.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import SMALL_SEARCH_ARGS
from tests.servers import free_port, stop_group, tail, wait_for_health

pytestmark = pytest.mark.slow
NAME, BUDGET = "pg", 4


@dataclass(frozen=True)
class PgStack:
    pg_port: int
    tracking_uri: str
    artifacts_dir: Path

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.pg_port}/{database}"


def _pg_bin() -> Path | None:
    """Debian's versioned server binaries (newest first), else whatever is on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb and shutil.which("pg_ctl") else None


@pytest.fixture(scope="module")
def pg_stack():
    pytest.importorskip("psycopg2", reason="needs psycopg2 (pip install psycopg2-binary; the test extras)")
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("needs PostgreSQL server binaries: run bash .ci/install-postgres.sh")
    import psycopg2

    # initdb and postgres refuse to run as root: as root, run them as the `postgres` system user.
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    # Not under pytest's tmp_path: that lives in a 0700 root folder the postgres user can't enter.
    base = Path(tempfile.mkdtemp(prefix="prune-search-pg-"))
    data, sock, pg_log = base / "data", base / "sock", base / "postgres.log"
    sock.mkdir()
    if as_root:
        for p in (base, sock):
            shutil.chown(p, "postgres", "postgres")
    run = dict(cwd=base, check=True, capture_output=True, text=True, timeout=300)
    server = None
    pg_started = False
    try:
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                        "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"], **run)
        port = free_port()
        with open(data / "postgresql.conf", "a") as conf:  # a throwaway instance: speed over durability
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{sock}'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(pg_log), "-w", "-t", "120",
                        "start"], **run)
        pg_started = True
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
        try:
            conn.autocommit = True  # CREATE DATABASE can't run in a transaction
            with conn.cursor() as cur:
                cur.execute("CREATE DATABASE mlflow")
                cur.execute("CREATE DATABASE optuna")
        finally:
            conn.close()

        http_port = free_port()
        artifacts, server_log = base / "mlartifacts", base / "mlflow-server.log"
        tracking_uri = f"http://127.0.0.1:{http_port}"
        stack = PgStack(port, tracking_uri, artifacts)
        # No job runner: it starts 7 huey consumers (GenAI scorer jobs, unused here) that cost memory on
        # a small CI machine and ~20 s to stop.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with open(server_log, "w") as log:
            server = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", stack.url("mlflow"),
                 "--artifacts-destination", str(artifacts), "--host", "127.0.0.1", "--port", str(http_port),
                 "--workers", "1"],
                cwd=base, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        # ~10-15 s on an idle machine (first start runs MLflow's migrations); generous for busy CI.
        wait_for_health(tracking_uri, server, server_log, timeout_s=180)
        yield stack
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"{exc.cmd[len(prefix)]} failed ({exc.returncode}):\n{exc.stdout}\n{exc.stderr}\n"
                           f"{tail(pg_log)}") from None
    finally:
        if server is not None:
            stop_group(server)
        if pg_started:
            subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"],
                           cwd=base, capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


def test_search_with_postgres_behind_mlflow_and_optuna(pg_stack, ray_session, tmp_path, monkeypatch):
    import optuna
    import sqlalchemy as sa
    import torch
    from mlflow.tracking import MlflowClient

    from mlflow_config import artifacts, tracking
    from search.run import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # it would win over --tracking-uri
    optuna_url = pg_stack.url("optuna")
    code = main(["--budget", str(BUDGET), *SMALL_SEARCH_ARGS, "--home", str(tmp_path / "home"), "--name", NAME,
                 "--methods", "magnitude,fpgm", "--tracking-uri", pg_stack.tracking_uri,
                 "--optuna-storage", optuna_url])
    assert code == 0

    # MLflow, read back through the HTTP server: one FINISHED parent, one FINISHED child per trial.
    client = MlflowClient(pg_stack.tracking_uri)
    exps = [e.experiment_id for e in client.search_experiments()]
    parents = client.search_runs(exps, filter_string=f"tags.search = '{NAME}' and tags.role = 'search'")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.info.artifact_uri.startswith("mlflow-artifacts:"), parent.info.artifact_uri  # proxied by the server
    runs = tracking.child_runs(client, parent.info.experiment_id, parent.info.run_id)
    assert len(runs) == BUDGET
    assert all(r.info.status == "FINISHED" for r in runs), [r.info.status for r in runs]
    assert {r.data.params["method"] for r in runs} <= {"magnitude", "fpgm"}
    for r in runs:
        masks = artifacts.load_tensors(client, r.info.run_id, f"{artifacts.MASKS_DIR}/{artifacts.MASKS_FILE}")
        # FPGM removes filters physically and may leave no mask at all; magnitude always masks.
        assert all(m.dtype == torch.bool for m in masks.values())
        assert masks or r.data.params["method"] != "magnitude"
        m = r.data.metrics
        assert m["params"] - m["nonzero_params"] == sum(int((~t).sum()) for t in masks.values())
    # The artifacts really went through the server to its destination folder.
    assert len(list(pg_stack.artifacts_dir.rglob(artifacts.MASKS_FILE))) == BUDGET

    # Optuna: the study lives in PostgreSQL with every trial COMPLETE.
    study = optuna.load_study(study_name=NAME, storage=optuna_url)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [optuna.trial.TrialState.COMPLETE] * BUDGET, states

    # And the rows are really in PostgreSQL, not in some SQLite file in --home.
    assert not list((tmp_path / "home").glob("*.db"))
    for url, sql, expected in ((pg_stack.url("mlflow"), "SELECT count(*) FROM runs", BUDGET + 1),
                               (optuna_url, "SELECT count(*) FROM trials WHERE state = 'COMPLETE'", BUDGET)):
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text(sql)).scalar_one() == expected, sql
        finally:
            engine.dispose()


PG_PASSWORD = "pg-Pw@/x y:ü-never-shown"  # '@', '/', a space, ':' and non-ASCII: typed raw in the URLs


def test_a_postgresql_password_is_nowhere(pg_stack, ray_session, tmp_path, monkeypatch, capsys):
    """Both stores as plain postgresql:// URLs with a raw password (the throwaway server trusts
    every login, so any password connects): the search runs, and the password is in no output,
    no file under --home, no Ray session log, no process command line while it runs, and no row
    of either store."""
    import ray
    import sqlalchemy as sa

    from search.run import main
    from tests.secrets_leak import command_lines_containing, files_containing

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    url = f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{pg_stack.pg_port}"
    home = tmp_path / "home"
    with command_lines_containing(PG_PASSWORD) as seen_in_argv:
        # Its own experiment: the other test's lives behind the HTTP server (mlflow-artifacts:/ URIs).
        code = main(["--budget", "2", *SMALL_SEARCH_ARGS, "--home", str(home), "--name", "pgpw", "--methods",
                     "magnitude", "--baseline-epochs", "2", "--experiment", "pgpw-direct", "--tracking-uri",
                     f"{url}/mlflow", "--optuna-storage", f"{url}/optuna"])
    out, err = capsys.readouterr()
    assert code == 0, out[-3000:] + err[-3000:]
    leaks = [line for line in (out + err).splitlines() if PG_PASSWORD in line]
    assert leaks == []
    assert seen_in_argv == []
    secret = PG_PASSWORD.encode()
    assert files_containing(home, secret) == []
    session = Path(ray._private.worker._global_node.get_session_dir_path())
    assert files_containing(session, secret) == []  # logs, spilled objects, runtime resources
    for database, sql in (("mlflow", "SELECT count(*) FROM params WHERE value LIKE :pw"),
                          ("mlflow", "SELECT count(*) FROM tags WHERE value LIKE :pw"),
                          ("optuna", "SELECT count(*) FROM trial_user_attributes WHERE value_json LIKE :pw"),
                          ("optuna", "SELECT count(*) FROM study_user_attributes WHERE value_json LIKE :pw")):
        engine = sa.create_engine(pg_stack.url(database))
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text(sql), {"pw": f"%{PG_PASSWORD}%"}).scalar_one() == 0, (database, sql)
        finally:
            engine.dispose()
