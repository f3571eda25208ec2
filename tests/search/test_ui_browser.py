"""search.ui in a real browser: the MLflow UI started on a finished search's store shows the
search's runs, its Pareto trials and the pareto.png plot, in headless Chromium (Debian's package,
`bash .ci/install-browser.sh`). Plain `chromium --dump-dom / --screenshot`: no Python packages.
Screenshots go to test-artifacts/ in the repo root. Fast tests check the command line."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from mlflow_config import tracking
from search import ui

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts"
# STACK_NOTES: root needs --no-sandbox; the rest keeps a headless run offline and repeatable.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,900", "--virtual-time-budget=8000")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen, grace_s: float = 15) -> None:
    """The process group we created (start_new_session): the server and its workers."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=wait)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def chromium() -> Path:
    """Checked before the server starts. CI must have it (install-browser.sh); locally: skip."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} missing: run bash .ci/install-browser.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
def ui_server(chromium, digits_search, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # the search's own store
    log = tmp_path / "ui.log"
    with log.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "search.ui", "--home", str(digits_search.home),
                                 "--port", str(port)], stdout=fh, stderr=subprocess.STDOUT, env=env,
                                cwd=REPO, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180  # ~12 s idle; far more on a loaded 2-core machine
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"search.ui did not come up on {base}:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        assert base in log.read_text()  # the address is printed
        yield base
    finally:
        stop_group(proc)


def browse(url: str, tmp_path: Path, screenshot: Path | None = None) -> str:
    """The DOM after the page settled (and a screenshot). Chromium's exit code means nothing, and
    a fresh profile per call: a URL differing only after '#' would not reload."""
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    action = [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    proc = subprocess.Popen([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *action, url],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        return proc.communicate(timeout=120)[0]
    finally:
        stop_group(proc, grace_s=5)


def browse_until(url: str, tmp_path: Path, *expected: str, tries: int = 3) -> str:
    """The UI fetches runs after the first render; on a loaded machine retry before failing."""
    for _ in range(tries):
        dom = browse(url, tmp_path)
        if all(e in dom for e in expected):
            return dom
    missing = [e for e in expected if e not in dom]
    pytest.fail(f"{url}: not shown after {tries} tries: {missing}")


@pytest.mark.slow
def test_ui_shows_the_search_its_pareto_trials_and_plot(digits_search, ui_server, tmp_path):
    SHOTS.mkdir(exist_ok=True)
    exp, parent = digits_search.experiment_id, digits_search.parent_run_id
    client = MlflowClient(digits_search.tracking_uri)
    children = tracking.child_runs(client, exp, parent)
    pareto = [r for r in children if r.data.tags["pareto"] == "true"]

    # The runs table, filtered to this search: its run and the count of its runs (parent + trials).
    search_filter = urllib.parse.quote(f"tags.search = '{digits_search.name}'")
    runs_url = f"{ui_server}/#/experiments/{exp}/runs?searchFilter={search_filter}"
    browse_until(runs_url, tmp_path, f"<strong>{len(children) + 1}</strong> matching runs",
                 f'href="#/experiments/{exp}/runs/{parent}"><span class="', f">{digits_search.name}</span>")
    browse(runs_url, tmp_path, SHOTS / "ui-runs.png")

    # Trials are collapsed under their parent in the table: the compare view lists the Pareto ones.
    query = urllib.parse.urlencode({"runs": json.dumps([r.info.run_id for r in pareto]),
                                    "experiments": json.dumps([exp])})
    compare_url = f"{ui_server}/#/compare-runs?{query}"
    browse_until(compare_url, tmp_path, "val_acc", *(r.info.run_name for r in pareto), *(r.info.run_id for r in pareto))
    browse(compare_url, tmp_path, SHOTS / "ui-pareto-trials.png")

    # The parent's Pareto plot, previewed: the image element is filled from the fetched bytes.
    art_url = f"{ui_server}/#/experiments/{exp}/runs/{parent}/artifacts/pareto.png"
    browse_until(art_url, tmp_path, 'artifact-name="pareto.png"', '<img alt="pareto.png" src="blob:')
    shot = SHOTS / "ui-pareto-png.png"
    browse(art_url, tmp_path, shot)
    assert shot.stat().st_size > 20_000  # a rendered page with the plot, not a blank one
    get = f"{ui_server}/get-artifact?{urllib.parse.urlencode({'path': 'pareto.png', 'run_uuid': parent})}"
    with urllib.request.urlopen(get, timeout=30) as r:
        assert r.read(8) == b"\x89PNG\r\n\x1a\n"


# ---- fast: the command line, without starting anything ---------------------------------------

def test_server_command_is_an_argument_list_bound_to_loopback(tmp_path, monkeypatch, capsys):
    (tmp_path / "mlflow.db").touch()  # search.ui only checks that the store exists
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    started = []
    monkeypatch.setattr(os, "execv", lambda path, argv: started.append(argv))
    assert ui.main(["--home", str(tmp_path), "--port", str(free_port())]) == 0
    (argv,) = started
    assert argv[:4] == [sys.executable, "-m", "mlflow", "server"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and "0.0.0.0" not in argv
    assert argv[argv.index("--backend-store-uri") + 1] == f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
    assert "http://127.0.0.1:" in capsys.readouterr().out


@pytest.mark.parametrize("argv,expected", [
    (["--port", "0"], "--port: 0 is not accepted"),
    (["--port", "70000"], "--port: 70000 is not accepted"),
    (["--port", "web"], "--port: invalid int value: 'web'"),
    (["--host", "127.0.0.1; rm -rf /"], "--host: '127.0.0.1; rm -rf /' is not accepted"),
    (["--host", "203.0.113.7"], "--port: cannot listen on 203.0.113.7"),
    ([], "no MLflow store at sqlite:///"),
])
def test_bad_command_line_is_one_line_exit_2(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(os, "execv", lambda *a: pytest.fail("server started on bad input"))
    code = ui.main(["--home", str(tmp_path), *argv] + ([] if "--port" in argv else ["--port", str(free_port())]))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err


def test_port_in_use_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, "execv", lambda *a: pytest.fail("server started on a busy port"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code = ui.main(["--home", str(tmp_path), "--port", str(busy.getsockname()[1])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: --port: cannot listen on 127.0.0.1:") and "\n" not in err
