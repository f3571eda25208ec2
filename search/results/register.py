"""A chosen trial as a registered MLflow model version (`prune-search export --run-id RUN --register NAME`).

The pruned model (physically smaller for fpgm and hybrid) is logged as an ONNX model (MLflow's onnx
flavor), with a signature and an input example, as a model of the trial's run. A new version of NAME
is then registered and tagged with the search, method and metrics, so `models:/NAME/VERSION` is what
a serving or deployment step loads.

Why ONNX, not mlflow.pytorch: the registry is a store many people write to, so loading from it must
not run code. `mlflow.onnx.load_model` parses a protobuf (onnx.load) and onnxruntime runs the graph:
a tampered file fails to parse, it cannot execute anything. A pickled PyTorch model runs whatever its
pickle says, and a torch.export "pt2" archive follows its own pickle flag: a tampered one ran
os.system when loaded.
"""
from __future__ import annotations

import importlib.util
import re
import tempfile
from pathlib import Path

import torch
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from mlflow_config import tracking
from search.results.cli_kit import UsageError
from search.results.reproduce import Trial
from trainables.measure import TEST_ACC, VAL_ACC

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
EXAMPLE_IMAGES = 4  # > 1, so the exported graph keeps a dynamic batch dimension
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")  # export (onnx, onnxscript) and running it (onnxruntime)
METRIC_TAGS = (VAL_ACC, TEST_ACC, "size_bytes", "size_ratio", "params", "nonzero_params", "flops", "latency_ms")


def check_name(name: str) -> str:
    if not MODEL_NAME.fullmatch(name):
        raise UsageError(f"--register: {name!r} is not accepted; expected a model name of letters, digits, "
                             "'_', '-' and '.', starting with a letter or digit, e.g. digits-fpgm")
    return name


def version_tags(trial: Trial) -> dict[str, str]:
    tags, metrics = trial.run.data.tags, trial.run.data.metrics
    out = {"search": tags.get("search", ""), "method": tags.get("method", ""), "trial_run_id": trial.run.info.run_id,
           "search_run_id": trial.parent.info.run_id, "pareto": tags.get("pareto", ""),
           "dataset": trial.parent.data.params.get("dataset", ""), "model": trial.run.data.params.get("model", "")}
    out.update({k: repr(metrics[k]) for k in METRIC_TAGS if k in metrics})
    return out


def describe(trial: Trial) -> str:
    m, d, tags = trial.run.data.metrics, trial.data, trial.run.data.tags
    return (f"{tags.get('method')} trial {trial.run.info.run_id} of search {tags.get('search')}: "
            f"val_acc {m.get('val_acc', float('nan')):.4f}, size {m.get('size_bytes', float('nan')):,.0f} bytes "
            f"({m.get('size_ratio', float('nan')):.1%} of dense). Input: float32 images N x {d.in_channels} x "
            f"{d.image_size} x {d.image_size}, pixels scaled to [0, 1] then normalized with mean {list(d.mean)} and "
            f"std {list(d.std)}; output: {d.num_classes} class logits.")




def missing_onnx_packages() -> list[str]:
    return [p for p in ONNX_PACKAGES if importlib.util.find_spec(p) is None]


def write_onnx(model: torch.nn.Module, example: torch.Tensor, out: Path) -> None:
    """One self-contained .onnx file (no external data), any batch size."""
    batch = torch.export.Dim("batch")
    torch.onnx.export(model, (example,), str(out), input_names=["input"], output_names=["logits"],
                      dynamic_shapes=({0: batch},), external_data=False, verbose=False)


def requirements() -> list[str]:
    """What loading the model needs: ONNX and onnxruntime, nothing of this package or of torch."""
    import mlflow
    import numpy
    import onnx
    import onnxruntime

    return [f"mlflow=={mlflow.__version__}", f"onnx=={onnx.__version__}", f"onnxruntime=={onnxruntime.__version__}",
            f"numpy=={numpy.__version__}"]


def register_trial(trial: Trial, name: str, tracking_uri: str) -> ModelVersion:
    import mlflow
    import onnx
    from mlflow.models import infer_signature

    x = trial.norm(trial.data.val.x[:EXAMPLE_IMAGES])
    with torch.inference_mode():
        y = trial.model(x)
    signature = infer_signature(x.numpy(), y.numpy())
    run = trial.run
    tags = version_tags(trial)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        write_onnx(trial.model, x, path)
        proto = onnx.load(str(path))
    with tracking.fluent_tracking_uri(tracking_uri):
        # Created explicitly in the trial's experiment (not the default one), with the trial's params.
        logged = mlflow.initialize_logged_model(name=f"{tags['method']}-pruned", source_run_id=run.info.run_id,
                                                params=dict(run.data.params), tags=tags,
                                                experiment_id=run.info.experiment_id)
        # Requirements given, not inferred: inference loads the model again in a subprocess (slow).
        info = mlflow.onnx.log_model(proto, name=logged.name, model_id=logged.model_id, run_id=run.info.run_id,
                                     signature=signature, input_example=x.numpy(), registered_model_name=name,
                                     pip_requirements=requirements(), save_as_external_data=False)
    client = MlflowClient(tracking_uri)
    version = str(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    return client.update_model_version(name, version, description=describe(trial))
