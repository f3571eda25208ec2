"""search.results.export: written models load with plain torch / onnxruntime and give the rebuilt trial's
outputs; a structurally pruned (fpgm) model is exported physically smaller than dense; --register
makes a registered MLflow model version (ONNX) that loads back with mlflow.onnx, and a tampered
registered or exported file does not run code when loaded."""
from __future__ import annotations

import copy
import importlib.util
import os
import warnings
from pathlib import Path

import pytest
import torch

from mlflow_config import tracking
from search.results import cli_kit as cli
from search.results import export, reproduce
from trainables.models import build_model

ONNX_READY = all(importlib.util.find_spec(p) for p in export.ONNX_PACKAGES)
FORMATS = ["state_dict", "torchscript", pytest.param("onnx", marks=pytest.mark.skipif(
    not ONNX_READY, reason=f"needs {', '.join(export.ONNX_PACKAGES)}"))]


def trial_of(search, method: str) -> reproduce.Trial:
    client, uri = cli.open_store(search.tracking_uri, search.home)
    runs = [r for r in tracking.child_runs(client, search.experiment_id, search.parent_run_id)
            if r.data.tags["method"] == method]
    assert runs, f"no {method} trial in the search"
    smallest = min(runs, key=lambda r: r.data.metrics["params"])  # fpgm: the one with most filters removed
    return reproduce.load_trial(client, smallest.info.run_id, uri, home=search.home)


def load_outputs(fmt: str, path, trial: reproduce.Trial, x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Outputs and parameter count (ONNX: initializer elements) of the file, loaded without
    search.results.export's own loader."""
    if fmt == "state_dict":
        model = copy.deepcopy(trial.model)  # the architecture only: every value must come from the file
        for t in model.state_dict().values():
            t.zero_()
        state = torch.load(path, weights_only=True)
        model.load_state_dict(state)
        return model.eval()(x), sum(state[n].numel() for n, _ in model.named_parameters())
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model = torch.jit.load(str(path))
        return model(x), sum(p.numel() for p in model.parameters())
    import onnx
    import onnxruntime

    graph = onnx.load(str(path)).graph
    n = sum(int(torch.tensor(list(t.dims)).prod()) for t in graph.initializer if len(t.dims) > 0)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]), n


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("method", ["fpgm", "magnitude"])
def test_exported_model_loads_and_matches_the_trial(digits_search, method, fmt, tmp_path, capsys):
    trial = trial_of(digits_search, method)
    out = tmp_path / f"model.{fmt}"
    code = export.main(["--run-id", trial.run.info.run_id, "--format", fmt, "--out", str(out),
                        "--home", str(digits_search.home), "--tracking-uri", digits_search.tracking_uri])
    printed = capsys.readouterr().out
    assert code == 0 and "OK" in printed, printed
    x = trial.norm(trial.data.test.x[:100])
    with torch.inference_mode():
        got, n_params = load_outputs(fmt, out, trial, x)
        expected = trial.model(x)
    assert (got - expected).abs().max().item() <= export.TOLERANCE
    dense = sum(p.numel() for p in build_model("simplecnn", 1, 10, 8).parameters())
    if method == "fpgm":
        assert n_params < dense  # filters physically removed, not masked
    # ONNX folds BatchNorm into the convs, so only the torch formats keep the exact count.
    if fmt != "onnx":
        assert n_params == trial.run.data.metrics["params"]  # masked methods: dense shapes, zeros inside


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fpgm", "hybrid"])
def test_registered_version_loads_from_the_registry_and_matches_the_trial(digits_search, method, monkeypatch,
                                                                          capsys):
    import mlflow
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", digits_search.tracking_uri)  # for models:/ URIs; undone after
    trial = trial_of(digits_search, method)
    name = f"digits-{method}"
    code = export.main(["--run-id", trial.run.info.run_id, "--register", name, "--home", str(digits_search.home)])
    printed = capsys.readouterr().out
    client = MlflowClient(digits_search.tracking_uri)
    (version,) = client.search_model_versions(f"name = '{name}'")
    uri = f"models:/{name}/{version.version}"
    assert code == 0 and uri in printed, printed
    tags, metrics = version.tags, trial.run.data.metrics
    assert (tags["search"], tags["method"], tags["trial_run_id"]) == (digits_search.name, method, trial.run.info.run_id)
    assert float(tags["val_acc"]) == metrics["val_acc"] and float(tags["size_bytes"]) == metrics["size_bytes"]
    info = mlflow.models.get_model_info(uri)
    assert list(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 1, 8, 8]  # any batch size
    assert info.saved_input_example_info is not None

    import onnxruntime
    from onnx import numpy_helper

    proto = mlflow.onnx.load_model(uri)  # a protobuf: loading it cannot run code
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = trial.norm(trial.data.test.x[:100])
    with torch.inference_mode():
        expected = trial.model(x)
    got = torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
    assert (got - expected).abs().max().item() <= export.TOLERANCE
    shapes = {i.name: tuple(numpy_helper.to_array(i).shape) for i in proto.graph.initializer}
    conv1 = next(shape for key, shape in shapes.items() if "conv1" in key and len(shape) == 4)
    dense = build_model("simplecnn", 1, 10, 8)
    assert conv1[0] == trial.model.conv1.out_channels < dense.conv1.out_channels  # physically smaller


@pytest.mark.slow
def test_a_tampered_registered_model_does_not_run_its_code(digits_search, monkeypatch, tmp_path):
    """The registered file replaced by a pickle whose loading would create a marker file: loading
    the version fails to parse it and creates nothing."""
    import pickle
    from urllib.parse import urlparse

    import mlflow
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", digits_search.tracking_uri)
    trial = trial_of(digits_search, "fpgm")
    name = "digits-tampered"
    assert export.main(["--run-id", trial.run.info.run_id, "--register", name, "--home", str(digits_search.home)]) == 0
    client = MlflowClient(digits_search.tracking_uri)
    (version,) = client.search_model_versions(f"name = '{name}'")
    stored = Path(urlparse(client.get_model_version_download_uri(name, version.version)).path)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for onnx_file in stored.rglob("*.onnx"):
        onnx_file.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(Exception):  # noqa: B017 - whatever the parser raises; what matters is below
        mlflow.onnx.load_model(f"models:/{name}/{version.version}")
    assert not marker.exists()


# The tampered file is pickled by hand (protocol 4): torch names the protocol while refusing it.
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_a_tampered_state_dict_export_does_not_run_its_code(tmp_path):
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    out = tmp_path / "model.pt"
    out.write_bytes(pickle.dumps({"conv1.weight": Payload()}))
    with pytest.raises(Exception):  # noqa: B017 - torch refuses the global (UnpicklingError)
        export.load_and_run("state_dict", out, build_model("simplecnn", 1, 10, 8), torch.zeros(1, 1, 8, 8))
    assert not marker.exists()


@pytest.mark.slow
def test_a_store_that_cannot_register_is_one_line_exit_2(digits_search, monkeypatch, capsys):
    from mlflow.exceptions import MlflowException

    def refuse(*args, **kwargs):
        raise MlflowException("Model registry functionality is unavailable; got unsupported URI 'file:///x'\nmore")

    monkeypatch.setattr(export, "register_trial", refuse)
    trial = trial_of(digits_search, "magnitude")
    code = export.main(["--run-id", trial.run.info.run_id, "--register", "never", "--home", str(digits_search.home)])
    err = capsys.readouterr().err.strip().splitlines()  # progress steps, then the one error line
    errors = [line for line in err if line.startswith("error:")]
    assert code == 2 and errors == err[-1:], err
    assert errors[0].startswith("error: --register: MLflow could not register 'never'") and "unavailable" in errors[0]
    assert "\nmore" not in errors[0] and "more" not in errors[0].split("'file:///x'")[1]


def test_onnx_without_its_packages_is_one_line_naming_them(monkeypatch, tmp_path, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    code = export.main(["--run-id", "x", "--format", "onnx", "--out", str(tmp_path / "m.onnx"),
                        "--home", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: --format onnx needs the Python package(s) onnx,") and "pip install" in err[0]


@pytest.mark.parametrize("argv,expected", [
    (["--format", "keras", "--out", "m.pt"], "--format: invalid choice: 'keras' (choose from 'state_dict', "
     "'torchscript', 'onnx')"),
    (["--format", "state_dict", "--out", "HOME"], "--out: "),
    (["--format", "state_dict", "--out", "m.pt"], "no MLflow store at sqlite:///"),
    (["--format", "state_dict"], "--out: required with --format"),
    ([], "nothing to do; expected --format FORMAT --out PATH, --register NAME, or both"),
    (["--register", "my model/v1"], "--register: 'my model/v1' is not accepted"),
    (["--format", "state_dict", "--out", "/proc/prune-search/m.pt"], "--out: '/proc/prune-search/m.pt' is not "
     "writable"),
    (["--format", "state_dict", "--out", "FILE/m.pt"], "cannot be created"),
])
def test_bad_command_line_is_one_line_exit_2(argv, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "file").write_text("x")
    argv = [str(tmp_path) if a == "HOME" else str(tmp_path / a) if a == "m.pt" else
            a.replace("FILE", str(tmp_path / "file")) for a in argv]
    code = export.main(["--run-id", "abc", *argv, "--home", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err


def test_every_model_exports_with_masked_and_removed_channels(tmp_path):
    """Fast, no MLflow: a model whose channels were removed by surgery goes through every format."""
    from pruners.surgery import rebuild

    dense = build_model("simplecnn", 1, 10, 8).eval()
    x = torch.randn(5, 1, 8, 8)
    model = rebuild(dense, {"conv1": list(range(0, 32, 2)), "fc1": list(range(100))}, x[:1]).eval()
    for fmt in ("state_dict", "torchscript") + (("onnx",) if ONNX_READY else ()):
        path = tmp_path / f"m.{fmt}"
        export.write(model, fmt, x[:1], path)
        got = export.load_and_run(fmt, path, model, x)
        assert (got - model(x)).abs().max().item() <= export.TOLERANCE, fmt
