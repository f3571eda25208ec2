"""The user's own model, end to end through Ray Tune, Optuna and MLflow: a model defined only in
this file (depthwise-separable convs, a residual addition, a channel concatenation, SiLU, global
average pooling), a checkpoint trained here by a plain PyTorch loop, the digits as an image folder
on disk, every method; then torchvision models by `--model torchvision.models:NAME`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from torch import nn

from tests.search.byo_model import SPEC, build, read_split, train_checkpoint, write_digits_folder

pytestmark = pytest.mark.slow
METHODS = ("magnitude", "taylor", "fpgm", "lottery", "hybrid")


@pytest.fixture(scope="module")
def byo(tmp_path_factory, ray_session):
    from search.config import load_config
    from search.results.cli_kit import printed_logs
    from search.run import run_search

    root = tmp_path_factory.mktemp("byo")
    data_dir = write_digits_folder(root / "digits")
    train_checkpoint(data_dir, root / "trained.pt", root / "init.pt")
    home = root / "home"
    cfg = load_config(["--budget", "5", "--dataset", "imagefolder", "--data-dir", str(data_dir), "--normalize", "none",
                       "--model", SPEC, "--checkpoint", str(root / "trained.pt"), "--rewind-checkpoint",
                       str(root / "init.pt"), "--finetune-epochs", "1", "--home", str(home), "--name", "byo"])
    lines: list[str] = []
    with printed_logs(lines.append):  # the lines the command line prints
        code = run_search(cfg, points=[{"method": m} for m in METHODS])
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    parent = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                filter_string="tags.search = 'byo' and tags.role = 'search'")[0]
    runs = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    return {"code": code, "lines": lines, "home": home, "client": client, "parent": parent,
            "runs": {r.data.tags["method"]: r for r in runs}, "root": root}


def test_every_method_runs_on_the_users_model_and_checkpoint(byo):
    assert byo["code"] == 0, byo["lines"][-5:]
    assert set(byo["runs"]) == set(METHODS)
    assert all(r.info.status == "FINISHED" for r in byo["runs"].values())
    assert byo["parent"].data.params["model"] == SPEC  # the factory spec is logged: tools rebuild from it
    assert byo["parent"].data.tags["graph_classifier"] == "head"


def test_the_measured_dense_accuracy_is_printed_before_any_trial(byo):
    lines = byo["lines"]
    measured = next(i for i, ln in enumerate(lines) if "dense model from checkpoint" in ln)
    first_trial = next(i for i, ln in enumerate(lines) if ln.startswith("[1/"))
    assert measured < first_trial
    assert byo["parent"].data.metrics["baseline_val_acc"] > 0.5  # trained, and preprocessed as it was trained


def masked_equivalent(pruned: nn.Module, kept: dict, example: torch.Tensor) -> nn.Module:
    """The dense-shaped model with the removed channels' weights at zero and the pruned model's
    weights elsewhere. Which original entry each surviving one was is read off a copy whose
    entries are their own indices, pruned by the same surgery."""
    from pruners.surgery import rebuild

    index = build(10)
    with torch.no_grad():
        for t in index.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.arange(t.numel(), dtype=t.dtype).view_as(t))
    survivors = rebuild(index, kept, example).state_dict()
    masked = build(10).eval()
    with torch.no_grad():
        for name, t in masked.state_dict().items():
            if t.is_floating_point():
                t.zero_()
                t.view(-1)[survivors[name].long().view(-1)] = pruned.state_dict()[name].view(-1)
    return masked


@pytest.mark.parametrize("method", ["fpgm", "hybrid"])
def test_filter_methods_are_physically_smaller_and_equal_the_masked_model(byo, method):
    import json

    from mlflow_config import artifacts
    from search.results.reproduce import load_trial

    run = byo["runs"][method]
    trial = load_trial(byo["client"], run.info.run_id, "test", home=byo["home"])
    dense_params = sum(p.numel() for p in build(10).parameters())
    assert run.data.metrics["params"] < dense_params
    assert sum(p.numel() for p in trial.model.parameters()) == run.data.metrics["params"]
    path = artifacts.download(byo["client"], run.info.run_id, "model/kept_channels.json", byo["root"] / method)
    kept = json.loads(path.read_text())
    # stem, the depthwise conv and the residual branch's pointwise conv share their channels: one group.
    assert kept["stem"] == kept["block.dw"] == kept["block.pw"]
    x = trial.norm(trial.data.val.x[:64])
    masked = masked_equivalent(trial.model, kept, x[:1])
    assert sum(int((p != 0).sum()) for p in masked.parameters()) <= dense_params
    with torch.no_grad():
        torch.testing.assert_close(masked(x), trial.model(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", METHODS)
def test_evaluate_reproduces_the_logged_accuracy_exactly(byo, method, capsys):
    from search.results.evaluate import main

    assert main(["--run-id", byo["runs"][method].info.run_id, "--home", str(byo["home"])]) == 0
    assert "val_acc: logged" in capsys.readouterr().out


def test_export_writes_a_model_that_reproduces_the_outputs(byo, tmp_path):
    from search.results.export import main

    out = tmp_path / "fpgm.pt"
    assert main(["--run-id", byo["runs"]["fpgm"].info.run_id, "--home", str(byo["home"]), "--format",
                 "torchscript", "--out", str(out)]) == 0
    loaded = torch.jit.load(str(out))
    assert isinstance(loaded(torch.zeros(1, 1, 8, 8)), torch.Tensor)


def write_color_folder(root: Path, classes: int = 10, per_class: int = 4, side: int = 32) -> Path:
    """Tiny RGB images, one dominant colour channel pattern per class: enough to run, not to learn."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 60, (side, side, 3), dtype=np.uint8)
            img[..., c % 3] += np.uint8(40 * (c // 3 + 1))
            Image.fromarray(img).save(folder / f"{i}.png")
    return root


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "resnet18"])
def test_torchvision_models_by_factory_spec(tmp_path, ray_session, name):
    from search.run import main

    data_dir = write_color_folder(tmp_path / "colors")
    home = tmp_path / "home"
    code = main(["--budget", "2", "--dataset", "imagefolder", "--data-dir", str(data_dir), "--model",
                 f"torchvision.models:{name}", "--methods", "fpgm", "--baseline-epochs", "1",
                 "--finetune-epochs", "1", "--val-fraction", "0.25", "--test-fraction", "0.25",
                 "--home", str(home), "--name", name])
    assert code == 0
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              filter_string=f"tags.search = '{name}' and attributes.status = 'FINISHED'")
    trials = [r for r in runs if r.data.tags.get("role") != "search"]
    assert len(trials) == 2, [r.data.tags.get("failure_reason") for r in runs]
    from torchvision import models

    dense = sum(p.numel() for p in getattr(models, name)(num_classes=10).parameters())
    assert all(r.data.metrics["params"] < dense for r in trials)  # physically smaller through the graph


def digits_tensors(folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = read_split(folder)
    return x, y  # floats in [0, 1], N x 1 x 8 x 8


def test_python_api_searches_and_loads_a_point(tmp_path, ray_session, capsys):
    from search import api

    data_dir = write_digits_folder(tmp_path / "digits")
    home = tmp_path / "home"
    result = api.search(model=build, train=digits_tensors(data_dir / "train"), val=digits_tensors(data_dir / "val"),
                        budget=2, methods=("hybrid",), baseline_epochs=2, finetune_epochs=1, normalize="none",
                        home=home, name="api", verbose=False)
    assert result.exit_code == 0 and result.front
    out = capsys.readouterr().out  # verbose=False: none of the search's own lines (Ray Tune prints its header)
    assert not [ln for ln in out.splitlines() if ln.startswith(("data:", "baseline ", "search api", "[1/", "Pareto"))], out
    client = MlflowClient(result.tracking_uri)
    parent = client.get_run(result.parent_run_id)
    assert parent.data.params["model"] == f"{build.__module__}:build"  # the CLI's records: the factory spec, the data
    assert parent.data.params["dataset"] == "imagefolder"
    row = result.front[0]
    assert row["method"] == "hybrid" and {"val_acc", "test_acc", "size_bytes", "params"} <= set(row)
    model = api.load_point(row["run_id"], home=home)
    assert isinstance(model, nn.Module)
    params = sum(p.numel() for p in model.parameters())
    assert params == row["params"] < sum(p.numel() for p in build(10).parameters())  # physically smaller
    nonzero = sum(int((p != 0).sum()) for p in model.parameters())
    assert nonzero == row["nonzero_params"]  # the masked weights come back exactly zero


def test_resume_rebuilds_the_search_from_its_record(byo, capsys):
    """The record keeps the factory spec and the checkpoint: a resume reuses the checkpoint-keyed
    baseline (nothing trained) and closes the search again. Last: it touches the parent run."""
    from search.run import main

    assert main(["--home", str(byo["home"]), "--resume", "byo"]) == 0
    out = capsys.readouterr().out
    assert "reusing cached dense model" in out and "resuming with 5 of 5 trials done" in out
