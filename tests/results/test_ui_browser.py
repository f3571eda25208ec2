"""search.results.ui in a real browser: the MLflow UI started on a finished search's store shows the
search's runs, its Pareto trials and the pareto.png plot, in headless Chromium (Debian's package,
`bash .ci/install-browser.sh`): plain `chromium --dump-dom / --screenshot`, and Selenium with
Debian's ChromeDriver to look inside the artifact viewer's frame. Screenshots go to
test-artifacts/ in the repo root. Fast tests check the command line."""
from __future__ import annotations

import json
import os
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
from search.results import ui
from tests.results.browser import (
    CHROMIUM,
    FLAGS,
    SHOTS,
    free_port,
    require,
    screenshot,
    selenium_chromium,
    serve,
    stop_group,
    wait_for,
)

RUN_NAME_CELL = 'div[role="gridcell"][col-id="attributes.`Run Name`"] a[href*="/runs/"]'


@pytest.fixture
def chromium() -> Path:
    """Checked before the server starts. CI must have it (install-browser.sh); locally: skip."""
    return require(CHROMIUM)


@pytest.fixture
def ui_server(chromium, digits_search, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # the search's own store
    base = f"http://127.0.0.1:{port}"
    with serve(["-m", "search.results.ui", "--home", str(digits_search.home), "--port", str(port)], base + "/health",
               tmp_path / "ui.log", env=env) as printed:
        assert base in printed  # the address is printed, and the search's runs link
        assert ui.runs_link(base, digits_search.experiment_id) in printed
        yield base


def browse(url: str, tmp_path: Path, shot: Path | None = None, tries: int = 2) -> str:
    """The DOM after the page settled (and a screenshot). Chromium's exit code means nothing, and
    a fresh profile per call: a URL differing only after '#' would not reload. Starved of CPU on a
    loaded machine, a headless Chromium can hang past its virtual time: stopped, tried again."""
    action = [f"--screenshot={shot}"] if shot else ["--dump-dom"]
    for attempt in range(1, tries + 1):
        profile = tmp_path / f"profile-{time.monotonic_ns()}"
        proc = subprocess.Popen([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *action, url],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            return proc.communicate(timeout=120)[0]
        except subprocess.TimeoutExpired:
            if attempt == tries:
                raise
        finally:
            stop_group(proc, grace_s=5)
    return ""  # not reached: the last try returns or raises


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


@pytest.mark.slow
def test_runs_view_interactive_front_and_front_table(digits_search, ui_server, tmp_path):
    exp, parent = digits_search.experiment_id, digits_search.parent_run_id
    client = MlflowClient(digits_search.tracking_uri)
    assert client.get_experiment(exp).tags["mlflow.experimentKind"] == "custom_model_development"
    children = tracking.child_runs(client, exp, parent)
    finished = {r.info.run_id for r in children if r.info.status == "FINISHED"}
    pareto = [r for r in children if r.data.tags["pareto"] == "true"]
    ml_view = "?workflowType=machine_learning"
    with selenium_chromium(tmp_path / "profile") as driver:
        # 1. The experiment link search.results.ui prints opens on the runs table (Model training view),
        # not the GenAI overview: the search's run is listed.
        driver.get(ui.runs_link(ui_server, exp))
        wait_for(driver, lambda d: any(a.text == digits_search.name for a in d.find_elements("css selector", RUN_NAME_CELL)),
                 what=f"the runs table listing {digits_search.name}")
        assert f"/experiments/{exp}/runs" in driver.current_url and "overview" not in driver.current_url
        assert "matching runs" in driver.find_element("tag name", "body").text
        screenshot(driver, "ui-experiment-runs.png")

        # 2. The parent's pareto.html draws inside the artifact viewer's sandboxed frame: one
        # circle per finished trial, in a plot with a real size.
        driver.get("about:blank")  # a URL differing only after '#' would not reload
        driver.get(f"{ui_server}/#/experiments/{exp}/runs/{parent}/artifacts/pareto.html{ml_view}")
        frame = wait_for(driver, lambda d: d.find_elements("css selector", "iframe.mlflow-html-iframe"),
                         what="the HTML viewer's frame")[0]
        driver.switch_to.frame(frame)
        circles = wait_for(driver, lambda d: d.find_elements("css selector", "svg circle.trial"), what="the points")
        assert {c.get_attribute("data-run-id") for c in circles} == finished
        svg = driver.find_element("css selector", "svg")
        assert svg.size["width"] > 300 and svg.size["height"] > 150
        driver.switch_to.default_content()
        screenshot(driver, "ui-pareto-html.png")

        # 3. The front table (mlflow.log_table) lists exactly the pareto=true trials.
        driver.get("about:blank")
        driver.get(f"{ui_server}/#/experiments/{exp}/runs/{parent}/artifacts/pareto_table.json{ml_view}")
        def table_lists_the_front(d):
            text = d.find_element("tag name", "body").text
            return text if all(r.info.run_id in text for r in pareto) else None

        body = wait_for(driver, table_lists_the_front, what="the front table's run ids")
        assert all(r.info.run_name in body for r in pareto)
        assert not any(run_id in body for run_id in finished - {r.info.run_id for r in pareto})
        screenshot(driver, "ui-front-table.png")


# ---- fast: the command line, without starting anything ---------------------------------------

def test_printed_links_open_each_searchs_experiment_on_its_runs(tmp_path):
    uri = "sqlite:////x/mlflow.db"
    (tmp_path / "searches").mkdir()
    for name, exp, store in (("a", "3", uri), ("b", "3", uri), ("c", "4", uri), ("elsewhere", "9", "sqlite:////y")):
        (tmp_path / "searches" / f"{name}.json").write_text(json.dumps(
            {"name": name, "experiment_id": exp, "tracking_uri": store}))
    (tmp_path / "searches" / "broken.json").write_text("{")
    assert ui.search_links(tmp_path, uri, "http://127.0.0.1:5000") == [
        "  a, b: http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning",
        "  c: http://127.0.0.1:5000/#/experiments/4/runs?workflowType=machine_learning"]


def test_server_command_is_an_argument_list_bound_to_loopback(tmp_path, monkeypatch, capsys):
    (tmp_path / "mlflow.db").touch()  # search.results.ui only checks that the store exists
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    started = []
    monkeypatch.setattr(os, "execve", lambda path, argv, env: started.append((argv, env)))
    assert ui.main(["--home", str(tmp_path), "--port", str(free_port())]) == 0
    ((argv, env),) = started
    assert argv[:4] == [sys.executable, "-m", "mlflow", "server"]
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and "0.0.0.0" not in argv
    # The store's URI (a password, for a database server) travels in the environment, never argv.
    assert "--backend-store-uri" not in argv and not any("mlflow.db" in a for a in argv)
    assert env["MLFLOW_BACKEND_STORE_URI"] == f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}"
    assert "http://127.0.0.1:" in capsys.readouterr().out


@pytest.mark.parametrize("argv,expected", [
    (["--port", "0"], "--port: 0 is not accepted"),
    (["--port", "70000"], "--port: 70000 is not accepted"),
    (["--port", "web"], "--port: invalid int value: 'web'"),
    (["--host", "127.0.0.1; rm -rf /"], "--host: '127.0.0.1; rm -rf /' is not accepted"),
    (["--host", "203.0.113.7"], "--port: cannot listen on 203.0.113.7"),
    ([], "no MLflow store at sqlite:///"),
    (["--tracking-uri", "postgresql://u:s3cret-pw@127.0.0.1:1/mlflow"],
     "--tracking-uri: the MLflow database postgresql+psycopg2://u:***@127.0.0.1:1/mlflow cannot be reached"),
])
def test_bad_command_line_is_one_line_exit_2(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(os, "execve", lambda *a: pytest.fail("server started on bad input"))
    code = ui.main(["--home", str(tmp_path), *argv] + ([] if "--port" in argv else ["--port", str(free_port())]))
    out, err = capsys.readouterr()
    err = err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert "s3cret-pw" not in out + "\n".join(err)


def test_port_in_use_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, "execve", lambda *a: pytest.fail("server started on a busy port"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code = ui.main(["--home", str(tmp_path), "--port", str(busy.getsockname()[1])])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: --port: cannot listen on 127.0.0.1:") and "\n" not in err
