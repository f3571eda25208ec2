"""search.results.dashboard: optuna-dashboard on the searches' studies. Fast tests check the command line;
the slow one opens a finished search's study in headless Chromium and sees its Pareto-front plot
with the objectives named."""
from __future__ import annotations

import os

import optuna
import pytest

from search.results import dashboard
from tests.results.browser import free_port, screenshot, selenium_chromium, serve, wait_for


def make_study(home, name: str = "s1") -> None:
    home.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(storage=f"sqlite:///{home / 'optuna.db'}", study_name=name,
                                directions=["maximize", "minimize"])
    study.add_trial(optuna.trial.create_trial(values=[0.9, 100.0]))


def test_serves_the_home_study_database_on_loopback_and_prints_each_study(tmp_path, monkeypatch, capsys):
    make_study(tmp_path)
    served = []
    monkeypatch.setattr("optuna_dashboard.run_server", lambda url, host, port: served.append((url, host, port)))
    port = free_port()
    assert dashboard.main(["--home", str(tmp_path), "--port", str(port)]) == 0
    assert served == [(f"sqlite:///{tmp_path.resolve() / 'optuna.db'}", "127.0.0.1", port)]
    out = capsys.readouterr().out
    assert f"study s1 (1 trials): http://127.0.0.1:{port}/dashboard/studies/1" in out


@pytest.mark.parametrize("argv,expected", [
    ([], "--home: no Optuna study database at "),
    (["--optuna-storage", "nosuchdb://x/y"], "--optuna-storage: cannot open nosuchdb://x/y"),
    (["--port", "0"], "--port: 0 is not accepted"),
    (["--host", "a b"], "--host: 'a b' is not accepted"),
])
def test_bad_command_line_is_one_line_exit_2(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("optuna_dashboard.run_server", lambda *a, **k: pytest.fail("served on bad input"))
    port = [] if "--port" in argv else ["--port", str(free_port())]
    code = dashboard.main(["--home", str(tmp_path), *argv, *port])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert not (tmp_path / "optuna.db").exists()  # nothing created


@pytest.mark.slow
def test_a_finished_search_shows_its_pareto_front_with_named_objectives(digits_search, tmp_path):
    storage = f"sqlite:///{digits_search.home / 'optuna.db'}"
    study = optuna.load_study(study_name=digits_search.name, storage=storage)
    assert study.metric_names == ["val_acc", "size_bytes"]
    assert study.user_attrs["objectives"].startswith("maximize val_acc") and "minimize size_bytes" in \
        study.user_attrs["objectives"]
    assert f"runs/{digits_search.parent_run_id}?workflowType=machine_learning" in study.user_attrs["mlflow_search_run"]
    for t in study.get_trials(states=[optuna.trial.TrialState.COMPLETE]):
        assert t.user_attrs["mlflow_run"].endswith(f"runs/{t.user_attrs['mlflow_run_id']}?workflowType=machine_learning")
    complete = len(study.get_trials(states=[optuna.trial.TrialState.COMPLETE]))
    study_id = optuna.storages.get_storage(storage).get_study_id_from_name(digits_search.name)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = ["-m", "search.results.dashboard", "--home", str(digits_search.home), "--port", str(port)]
    with serve(argv, f"{base}/api/meta", tmp_path / "dashboard.log", env=dict(os.environ)) as printed:
        assert f"{base}/dashboard/studies/{study_id}" in printed
        with selenium_chromium(tmp_path / "profile") as driver:
            driver.get(f"{base}/dashboard/studies/{study_id}")
            wait_for(driver, lambda d: "Pareto Front" in d.find_element("tag name", "body").text,
                     what="the Pareto Front card")
            # Plotly draws each trial as a path.point in the plot's scatter layer.
            points = wait_for(driver, lambda d: d.find_elements("css selector", ".scatterlayer path.point"),
                              what="the plot's points")
            body = driver.find_element("tag name", "body").text
            screenshot(driver, "dashboard-study.png")
    assert len(points) >= complete  # the first plot is the front: one point per complete trial
    assert "val_acc" in body and "size_bytes" in body  # objectives named, not "0" and "1"
    assert digits_search.name in body
