"""A chosen trial as a registered MLflow model version (`python -m results.export --run-id RUN --register NAME`).

The pruned model (physically smaller for fpgm and hybrid) is logged with mlflow.pytorch in MLflow's
default "pt2" format (torch.export: loads without this package's code and never unpickles), with a
signature and an input example, as a model of the trial's run. A new version of NAME is then
registered and tagged with the search, method and metrics, so `models:/NAME/VERSION` is what a
serving or deployment step loads.
"""
from __future__ import annotations

import contextlib
import os
import re
from typing import Iterator

import torch
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from results.cli import UsageError
from results.reproduce import Trial
from trainables.measure import VAL_ACC, TEST_ACC
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
EXAMPLE_IMAGES = 4  # > 1, so the exported graph keeps a dynamic batch dimension
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


@contextlib.contextmanager
def fluent_tracking_uri(uri: str) -> Iterator[None]:
    """mlflow.<flavor>.log_model reads the process-global tracking URI, and set_tracking_uri also
    writes MLFLOW_TRACKING_URI into the environment: both are put back afterwards."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    saved = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        with _use_tracking_uri(uri):
            yield
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved


def requirements() -> list[str]:
    """What loading the model needs: a pt2 model is torch.export's format, served through pyfunc."""
    import mlflow
    import numpy

    return [f"mlflow=={mlflow.__version__}", f"torch=={torch.__version__.split('+')[0]}",
            f"numpy=={numpy.__version__}"]


def register_trial(trial: Trial, name: str, tracking_uri: str) -> ModelVersion:
    import mlflow
    from mlflow.models import infer_signature

    x = trial.norm(trial.data.val.x[:EXAMPLE_IMAGES])
    with torch.inference_mode():
        y = trial.model(x)
    signature = infer_signature(x.numpy(), y.numpy())
    run = trial.run
    tags = version_tags(trial)
    with fluent_tracking_uri(tracking_uri):
        # Created explicitly in the trial's experiment (not the default one), with the trial's params.
        logged = mlflow.initialize_logged_model(name=f"{tags['method']}-pruned", source_run_id=run.info.run_id,
                                                params=dict(run.data.params), tags=tags,
                                                experiment_id=run.info.experiment_id)
        # Requirements given, not inferred: inference loads the model again in a subprocess (slow).
        info = mlflow.pytorch.log_model(trial.model, name=logged.name, model_id=logged.model_id,
                                        run_id=run.info.run_id, signature=signature, input_example=x.numpy(),
                                        registered_model_name=name, pip_requirements=requirements())
    client = MlflowClient(tracking_uri)
    version = str(info.registered_model_version)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    return client.update_model_version(name, version, description=describe(trial))
