"""Store URLs and resumes: a relative SQLite path is made absolute when the search starts (a
resume from another directory finds the same study, and creates no empty file there); a resume
that fails never rewrites a finished search's status."""
from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_small_search

pytestmark = pytest.mark.slow


def test_relative_storage_and_a_failed_resume_of_a_finished_search(ray_session, tmp_path, monkeypatch, capsys):
    import search.run as run_module

    first, elsewhere = tmp_path / "first", tmp_path / "elsewhere"
    first.mkdir()
    elsewhere.mkdir()
    home = tmp_path / "home"
    monkeypatch.chdir(first)
    done = run_small_search(home, "rel", 2, "--methods", "magnitude", "--optuna-storage", "sqlite:///rel.db")
    assert done.exit_code == 0 and (first / "rel.db").is_file()
    client = MlflowClient(done.tracking_uri)
    assert client.get_run(done.parent_run_id).data.params["optuna_storage"] == f"sqlite:///{first / 'rel.db'}"

    monkeypatch.chdir(elsewhere)
    assert run_module.main(["--home", str(home), "--resume", "rel"]) == 0  # nothing left to run
    assert "resuming with 2 of 2 trials done" in capsys.readouterr().out
    assert not (elsewhere / "rel.db").exists()

    def broken(*args, **kwargs):
        raise RuntimeError("the extension broke")

    monkeypatch.setattr(run_module, "_tune", broken)
    with pytest.raises(RuntimeError):
        run_module.main(["--home", str(home), "--resume", "rel", "--budget", "3"])
    parent = client.get_run(done.parent_run_id)
    assert parent.info.status == "FINISHED"  # a failed resume leaves the finished search as it was
    assert parent.data.tags["last_resume_failure"] == "RuntimeError: the extension broke"
