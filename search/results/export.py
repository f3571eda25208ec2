"""`prune-search export --run-id RUN [--format state_dict|torchscript|onnx --out PATH] [--register NAME]`.

Writes a trial's pruned model as rebuilt from MLflow (physically smaller for the structural
methods fpgm and hybrid; masked methods keep dense shapes with zeros), then loads the written
file back and checks it gives the rebuilt model's outputs on validation images (exit 1 if not).
`--register NAME` logs it as an MLflow PyTorch model of the trial's run and registers a new
version of NAME (search.results.register).
"""
from __future__ import annotations

import copy
import sys
import warnings
from pathlib import Path

import torch
from mlflow.exceptions import MlflowException

from search.results.cli_kit import (
    OneLineParser,
    UsageError,
    add_data_args,
    add_store_args,
    check_writable,
    fail,
    first_line,
    open_store,
    quiet_progress_bars,
)
from search.results.register import ONNX_PACKAGES, check_name, missing_onnx_packages, register_trial, write_onnx
from search.results.reproduce import Trial, load_trial
from trainables.progress import step

FORMATS = ("state_dict", "torchscript", "onnx")
TOLERANCE = 1e-4  # max |output difference|; other runtimes may reorder float sums slightly
CHECK_IMAGES = 256


def build_parser(prog: str = "prune-search export") -> OneLineParser:
    parser = OneLineParser(
        prog=prog,
        description="Export a trial's pruned model (rebuilt from MLflow) and verify that the written file loads "
        "and reproduces the model's outputs (max abs diff printed; exit 1 above "
        f"{TOLERANCE:g}). state_dict: torch.save of the tensors (its architecture: search.results.reproduce.load_trial "
        "rebuilds it); torchscript: traced, loads with torch.jit.load alone; onnx: needs "
        f"{', '.join(ONNX_PACKAGES)}. --register NAME: log it as an MLflow ONNX model (signature, input "
        "example; loading it never unpickles, so a tampered registry cannot run code) and register a new version "
        "of NAME, tagged with the search, method and metrics (needs the same packages).",
        epilog="Examples: prune-search export --run-id 573e58a7... --format onnx --out pruned.onnx;  "
        "prune-search export --run-id 573e58a7... --register digits-pruned")
    parser.add_argument("--run-id", required=True, help="MLflow run id of a trial (a child run of a search)")
    parser.add_argument("--format", choices=FORMATS, help="file format to write (with --out)")
    parser.add_argument("--out", type=Path, help="file to write (its folder is created)")
    parser.add_argument("--register", metavar="NAME", default=None,
                        help="register the model in MLflow's model registry as a new version of NAME")
    add_data_args(parser)
    add_store_args(parser)
    return parser


def check_targets(args) -> None:
    if (args.format is None) != (args.out is None):
        given, missing = ("--format", "--out") if args.out is None else ("--out", "--format")
        raise UsageError(f"{missing}: required with {given}; expected both --format FORMAT --out PATH")
    if args.format is None and args.register is None:
        raise UsageError("--format/--out or --register: nothing to do; expected --format FORMAT --out PATH, "
                             "--register NAME, or both")
    if args.register is not None:
        check_name(args.register)
    if args.out is not None and args.out.is_dir():
        raise UsageError(f"--out: {str(args.out)!r} is a folder; expected a file path to write")


def check_format_available(fmt: str | None, register: str | None = None) -> None:
    missing = missing_onnx_packages() if fmt == "onnx" or register is not None else []
    if missing:
        flag = "--format onnx" if fmt == "onnx" else "--register"
        raise UsageError(f"{flag} needs the Python package(s) {', '.join(missing)}, which are not installed; "
                         f"pip install {' '.join(ONNX_PACKAGES)}" + (", or use state_dict|torchscript"
                                                                    if fmt == "onnx" else ""))


def write(model: torch.nn.Module, fmt: str, example: torch.Tensor, out: Path) -> None:
    if fmt == "state_dict":
        torch.save({k: v.detach().clone() for k, v in model.state_dict().items()}, out)
    elif fmt == "torchscript":
        with warnings.catch_warnings():  # torch.jit is deprecated, yet it is what TorchScript means
            warnings.simplefilter("ignore", FutureWarning)
            torch.jit.save(torch.jit.trace(model, example), str(out))
    else:
        write_onnx(model, example, out)


@torch.inference_mode()
def load_and_run(fmt: str, out: Path, like: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Outputs of the written file, loaded the way a user would load it. A state_dict needs its
    architecture: `like`'s (every tensor is then replaced from the file)."""
    if fmt == "state_dict":
        model = copy.deepcopy(like)
        model.load_state_dict(torch.load(out, weights_only=True), strict=True)
        return model.eval()(x)
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(out))(x)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])


def check_destination(out: Path) -> None:
    """Before anything is loaded: the file can be written (its folder is created if need be)."""
    check_writable("--out", out, file=True)


def export_trial(trial: Trial, fmt: str, out: Path) -> float:
    """Writes the model and returns the max abs output difference of the file vs the model."""
    out.parent.mkdir(parents=True, exist_ok=True)
    write(trial.model, fmt, trial.example, out)
    x = trial.norm(trial.data.val.x[:CHECK_IMAGES])
    with torch.inference_mode():
        expected = trial.model(x)
    return float((load_and_run(fmt, out, trial.model, x) - expected).abs().max())


def main(argv: list[str] | None = None, prog: str = "prune-search export") -> int:
    from trainables.models import build_model

    quiet_progress_bars()
    try:
        args = build_parser(prog).parse_args(argv)
        check_targets(args)
        check_format_available(args.format, args.register)
        if args.out is not None:
            check_destination(args.out)
        client, uri = open_store(args.tracking_uri, args.home)
        step(f"export: rebuilding trial {args.run_id} from MLflow")
        trial = load_trial(client, args.run_id, uri, home=args.home, dataset=args.dataset, data_dir=args.data_dir)
    except UsageError as exc:
        return fail(exc)
    d = trial.data
    dense = sum(p.numel() for p in build_model(trial.config.model, d.in_channels, d.num_classes,
                                                 d.image_size).parameters())
    params = sum(p.numel() for p in trial.model.parameters())
    what = f"{trial.run.data.tags.get('method')} trial {args.run_id}, {params:,} params (dense {dense:,})"
    ok = True
    if args.format is not None:
        step(f"export: writing {args.format} to {args.out}, reloading it and comparing outputs")
        diff = export_trial(trial, args.format, args.out)
        ok = diff <= TOLERANCE
        print(f"wrote {args.out} ({args.format}, {args.out.stat().st_size:,} bytes): {what}")
        print(f"reloaded and compared on {min(CHECK_IMAGES, len(d.val))} validation images: max abs diff {diff:.3g} "
              f"(tolerance {TOLERANCE:g}) {'OK' if ok else 'MISMATCH'}")
    if args.register is not None and ok:
        step(f"export: logging the model to MLflow and registering {args.register}")
        try:
            version = register_trial(trial, args.register, uri)
        except MlflowException as exc:  # e.g. a store without a model registry: one line, not a traceback
            print(f"error: --register: MLflow could not register {args.register!r} "
                  f"({first_line(exc)})", file=sys.stderr)
            return 2
        print(f"registered models:/{args.register}/{version.version} ({what})\n"
              f"  load it with: mlflow.onnx.load_model(\"models:/{args.register}/{version.version}\") and "
              "onnxruntime, or mlflow.pyfunc.load_model(...).predict(images)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
