"""A tracking URI with user:password@: the search works against an MLflow server that demands
basic auth (MLflow's own basic-auth app), and the password shows up nowhere: not in the output,
not in --home (search record, Ray Tune's experiment state, caches), not in the MLflow params,
not in the Ray session's logs."""
from __future__ import annotations

import base64
import http.server
import os
import secrets
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mlflow_config import tracking
from mlflow_config.secrets import redact, split_userinfo
from search.run import main
from tests.conftest import SMALL_SEARCH_ARGS
from tests.secrets_leak import command_lines_containing, files_containing
from tests.servers import free_port, stop_group, wait_for_health

PASSWORD = "pw-Zq81-never-shown"


def test_redact_masks_the_password_anywhere_in_a_text():
    text = f"error at http://alice:{PASSWORD}@host:5000/api and postgresql://bob:x@db/optuna"
    assert redact(text) == "error at http://alice:***@host:5000/api and postgresql://bob:***@db/optuna"
    assert redact("http://host:5000 sqlite:////a/b.db") == "http://host:5000 sqlite:////a/b.db"


TRICKY = ["p@ss", "pa ss", "pa/ss", "pa:ss", "päss-wörd-密码", "a@b/c d:e?f#g"]


@pytest.mark.parametrize("password", TRICKY)
@pytest.mark.parametrize("scheme", ["http", "postgresql"])
def test_tricky_passwords_are_masked_split_and_encoded(password, scheme):
    from mlflow_config.stores import normalize

    uri = f"{scheme}://alice:{password}@db.example.com:5432/store?x=1"
    text = f"error: cannot reach {uri} (timeout); also sqlite:////a/b.db"
    assert redact(text) == f"error: cannot reach {scheme}://alice:***@db.example.com:5432/store?x=1 (timeout); " \
                           "also sqlite:////a/b.db"
    assert split_userinfo(uri) == (f"{scheme}://db.example.com:5432/store?x=1", "alice", password)
    if scheme == "postgresql":  # SQLAlchemy's parser needs it percent-encoded; it reads back the same
        import sqlalchemy as sa

        assert sa.engine.make_url(normalize(uri)).password == password
        assert password not in redact(normalize(uri))


def test_store_urls_are_made_absolute_and_get_an_installed_driver(tmp_path, monkeypatch):
    from mlflow_config.stores import normalize

    monkeypatch.chdir(tmp_path)
    assert normalize("sqlite:///rel.db") == f"sqlite:///{tmp_path / 'rel.db'}"
    assert normalize("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert normalize("postgresql://u@h/db").startswith("postgresql+psycopg2://")  # only psycopg2 is installed
    assert normalize("postgresql+psycopg2://u:p@h/db") == "postgresql+psycopg2://u:p@h/db"


def test_credentials_are_split_from_the_uri():
    assert split_userinfo(f"https://alice:{PASSWORD}@mlflow.example:443/x") == (
        "https://mlflow.example:443/x", "alice", PASSWORD)
    assert split_userinfo("http://a%40b:p%2Fq@h:1") == ("http://h:1", "a@b", "p/q")  # URL-decoded
    assert split_userinfo("http://h:1") == ("http://h:1", None, None)


class _AuthHealth(http.server.BaseHTTPRequestHandler):
    """/health behind basic auth, like a proxy in front of MLflow."""

    expected = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()

    def do_GET(self):  # noqa: N802 - http.server's spelling
        ok = self.headers.get("Authorization") == self.expected
        self.send_response(200 if ok else 401)
        self.end_headers()
        self.wfile.write(b"OK" if ok else b"unauthorized")

    def log_message(self, *args):
        pass


def test_health_check_sends_the_uris_credentials_and_never_shows_them(monkeypatch):
    for var in tracking.AUTH_ENV:
        monkeypatch.delenv(var, raising=False)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AuthHealth)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        tracking.check_reachable(f"http://alice:{PASSWORD}@127.0.0.1:{port}")  # no error: 200
        with pytest.raises(tracking.TrackingError) as bad:
            tracking.check_reachable(f"http://alice:wrong-{PASSWORD}@127.0.0.1:{port}")
        assert "HTTP 401; check the user and password" in str(bad.value) and PASSWORD not in str(bad.value)
        assert "alice:***@" in str(bad.value)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    """`mlflow server --app-name basic-auth` with an admin whose password is PASSWORD."""
    pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs Flask-WTF (the test extras)")
    base = tmp_path_factory.mktemp("auth-server")
    ini = base / "auth.ini"
    ini.write_text(f"[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{base / 'auth.db'}\n"
                   f"admin_username = alice\nadmin_password = {PASSWORD}\n"
                   "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
    port, log = free_port(), base / "server.log"
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(ini), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
           "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16)}  # the auth app's CSRF key
    for var in ("MLFLOW_TRACKING_URI", *tracking.AUTH_ENV):
        env.pop(var, None)
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth", "--backend-store-uri",
             f"sqlite:///{base / 'mlflow.db'}", "--artifacts-destination", str(base / "artifacts"), "--host",
             "127.0.0.1", "--port", str(port), "--workers", "1"],
            cwd=base, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_health(f"http://127.0.0.1:{port}", server, log, timeout_s=180)
        yield base, port
    finally:
        stop_group(server)


@pytest.mark.slow
def test_search_against_a_basic_auth_server_never_shows_the_password(auth_server, ray_session, tmp_path,
                                                                       monkeypatch, capsys):
    import ray
    from mlflow.tracking import MlflowClient

    base, port = auth_server
    for var in ("MLFLOW_TRACKING_URI", *tracking.AUTH_ENV):
        monkeypatch.delenv(var, raising=False)
    # The server demands the credentials: without them the API refuses.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1", timeout=10)
    assert refused.value.code == 401

    home = tmp_path / "home"
    with command_lines_containing(PASSWORD) as in_argv:
        code = main(["--budget", "2", *SMALL_SEARCH_ARGS, "--home", str(home), "--name", "auth", "--methods",
                     "magnitude", "--baseline-epochs", "2", "--tracking-uri", f"http://alice:{PASSWORD}@127.0.0.1:{port}"])
    assert in_argv == []
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    assert PASSWORD not in out + err
    assert f"http://alice:***@127.0.0.1:{port}" in out  # where to open the UI, redacted
    assert all(os.environ.get(v) is None for v in tracking.AUTH_ENV)  # the run put the environment back

    # Recorded through the authenticated server: parent and both trials FINISHED.
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    client = MlflowClient(f"http://127.0.0.1:{port}")
    exps = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(exps, filter_string="tags.search = 'auth'")
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 3
    parent = next(r for r in runs if r.data.tags.get("role") == "search")
    assert parent.data.params["tracking_uri"] == f"http://alice:***@127.0.0.1:{port}"

    # Nowhere on disk: --home (record, Ray Tune state, caches), the server's run store, Ray's logs.
    record = home / "searches" / "auth.json"
    assert "alice:***@" in record.read_text() and record.stat().st_mode & 0o777 == 0o600
    secret = PASSWORD.encode()
    assert files_containing(home, secret) == []
    assert files_containing(base / "mlflow.db", secret) == [] and files_containing(base / "artifacts", secret) == []
    session = Path(ray._private.worker._global_node.get_session_dir_path())
    assert files_containing(session, secret) == []  # logs, spilled objects, runtime resources


def test_the_optuna_storage_ray_pickles_carries_no_password(tmp_path):
    import pickle

    from search.tune import PrivateRDBStorage

    storage = PrivateRDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    storage.url = f"postgresql://alice:{PASSWORD}@db:5432/optuna"  # as it would be for a server
    blob = pickle.dumps(storage)
    assert PASSWORD.encode() not in blob and b"alice:***@db" in blob
    assert storage.url.endswith(f"{PASSWORD}@db:5432/optuna")  # the live object keeps what it connects with
