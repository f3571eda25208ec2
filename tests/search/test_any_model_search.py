"""A user's model with a residual addition onto a concatenation (Inception/DenseNet/GhostNet
style), searched through the command line with every structured method: no trial fails, every
trial is physically smaller, and what MLflow records (kept channels, removed_filters) is what
was pruned, down to the concatenation's mapped channels."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests import architectures

pytestmark = pytest.mark.slow
SPEC = f"{Path(architectures.__file__).resolve()}:concat_residual"


def test_concat_into_residual_search_prunes_every_structured_trial(ray_session, tmp_path, capsys):
    from mlflow_config import artifacts
    from search.run import main

    home = tmp_path / "home"
    code = main(["--budget", "6", "--dataset", "digits", "--baseline-epochs", "3", "--finetune-epochs", "1",
                 "--model", SPEC, "--methods", "fpgm,taylor,hybrid", "--taylor-granularity", "filter",
                 "--hybrid-filter-ratio", "0.3",
                 "--home", str(home), "--name", "concat"])
    out = capsys.readouterr().out
    assert code == 0, out[-2000:]
    assert "left dense by the filter methods (fpgm, filter taylor, hybrid): none" in out
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              filter_string="tags.search = 'concat'")
    trials = [r for r in runs if r.data.tags.get("role") != "search"]
    assert len(trials) == 6 and all(r.info.status == "FINISHED" for r in trials)
    assert {r.data.tags["method"] for r in trials} == {"fpgm", "taylor", "hybrid"}
    dense = architectures.build("concat_residual", 10, 1)
    shapes = {n: m.weight.shape[0] for n, m in dense.named_modules() if hasattr(m, "weight") and m.weight is not None
              and m.weight.dim() > 1}
    for r in trials:
        assert r.data.metrics["params"] < sum(p.numel() for p in dense.parameters()), r.data.tags["method"]
        path = artifacts.download(client, r.info.run_id, "model/kept_channels.json", tmp_path / r.info.run_id)
        kept = json.loads(path.read_text())
        # The block added onto the concatenation loses b1's channels in its first 12 and b2's in the rest.
        for block in ("dw.0", "dw.3"):
            assert kept[block] == kept["b1.0"] + [12 + i for i in kept["b2.0"]]
        for name, n in shapes.items():
            removed = r.data.metrics[f"removed_filters.{name}"]
            assert removed == pytest.approx(1 - len(kept[name]) / n if name in kept else 0.0), name
        assert r.data.metrics["removed_filters.head"] == 0.0  # the classifier keeps its classes
