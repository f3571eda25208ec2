"""SearchConfig: every setting of a search, spelled once.

The dataclass generates the CLI (`--flag-name`), reads TOML config files (`--config`), and its
field names are the keys used in Optuna's space, Ray Tune's trial config and MLflow params.
Searched settings are ranges "lo,hi" (a single value fixes them).
Precedence: defaults < config file < command-line flags.
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pruners.magnitude import SCOPES as MAGNITUDE_SCOPES
from pruners.registry import method_names
from trainables.data import DATASETS
from trainables.loops import SCHEDULES
from trainables.models import MODELS

OBJECTIVES = ("size", "nonzero", "flops", "latency")
OBJECTIVE_METRIC = {"size": "size_bytes", "nonzero": "nonzero_params", "flops": "flops", "latency": "latency_ms"}
SAMPLERS = ("tpe", "nsga2", "random")
SPACES = ("auto", "per-layer", "schedule")
SECRET_FIELDS = ("optuna_storage", "tracking_uri")  # URLs that may carry a password


@dataclass(frozen=True)
class Recipe:
    """Per-dataset training defaults, used where a setting is left at 0 / auto."""

    baseline_epochs: float
    finetune_epochs: float
    augment: bool
    baseline_schedule: str


# CIFAR-10: random crop + flip and a one-cycle schedule; without them the dense model overfits
# (~71% val after 15 epochs on 45k images instead of ~80%) and pruning looks free. Digits'
# 8x8 images are too small to crop, and a cosine schedule trains them well.
AUTO_RECIPE = {"digits": Recipe(30, 3, False, "cosine"), "cifar10": Recipe(15, 2, True, "onecycle")}


class ConfigError(Exception):
    """Bad user input; the CLI prints it as one line and exits 2."""


Range = tuple[float, float]


def _f(default, help: str, **meta):  # noqa: A002 - mirrors argparse
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable default")
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class SearchConfig:
    # What to search
    budget: int = _f(50, "number of trials (each prunes, fine-tunes and measures one model)")
    dataset: str = _f("digits", f"dataset: {', '.join(DATASETS)} (digits is offline, from scikit-learn)")
    data_dir: Path | None = _f(None, "cifar10: torchvision copy (cifar-10-batches-py/), image-folder tree "
                               "(train/<class>/*, optional test/), or a folder to download into")
    model: str = _f("simplecnn", f"model: {', '.join(sorted(MODELS))}")
    methods: tuple[str, ...] = _f(("magnitude", "taylor", "fpgm", "lottery", "hybrid"),
                                  "comma-separated pruning methods to compare")
    objective: str = _f("size", f"second objective, minimized against val accuracy: {', '.join(OBJECTIVES)}")
    sampler: str = _f("tpe", f"Optuna sampler: {', '.join(SAMPLERS)}")
    enqueue_recipe: bool = _f(True, "start with the article's uniform global-magnitude recipe (20/50/80/90/95%%) "
                              "so the front is never worse than it")
    seed: int = _f(0, "seed for the baseline, the splits, the sampler and every trial")
    # Per-layer sparsity bounds (the depth-aware policy)
    bounds_conv_early: Range = _f((0.0, 0.2), "sparsity bounds of the first conv layer (conservative)")
    bounds_conv: Range = _f((0.0, 0.7), "sparsity bounds of later conv layers")
    bounds_fc: Range = _f((0.0, 0.98), "sparsity bounds of hidden fully connected layers (aggressive)")
    bounds_classifier: Range = _f((0.0, 0.5), "sparsity bounds of the final classifier (careful)")
    # Searched method and fine-tune settings: these names are Optuna / Ray / MLflow keys
    finetune_lr: Range = _f((0.002, 0.05), "fine-tune learning rate range (log scale)", search=True)
    magnitude_scope: tuple[str, ...] = _f(("layer", "global"), "magnitude variants: layer (per-layer ratios), "
                                          "global (one threshold), lamp (Lee et al. 2021) or erk (Evci et al. "
                                          "2020) allocations of global_sparsity; a comma-separated list", search=True)
    global_sparsity: Range = _f((0.2, 0.95), "global magnitude sparsity range", search=True)
    taylor_batches: Range = _f((1, 8), "Taylor: batches to accumulate importance over", search=True)
    lottery_rounds: Range = _f((1, 5), "lottery: pruning rounds R", search=True)
    lottery_rewind_iter: tuple[int, ...] = _f((0, 20), "lottery: rewind points (training iteration; 0 = init)",
                                              search=True)
    hybrid_filter_ratio: Range = _f((0.0, 0.5), "hybrid: fraction of filters removed before weight pruning",
                                    search=True)
    hybrid_temperature: Range = _f((1.0, 8.0), "hybrid: distillation temperature", search=True)
    hybrid_alpha: Range = _f((0.1, 0.9), "hybrid: distillation weight", search=True)
    # Layer-wise space: one ratio per layer, or a compact depth schedule for deep models
    space: str = _f("auto", "per-layer (one ratio per layer), schedule (conv ratio = start + (end-start) * "
                    "depth^curve, per-layer for FC), or auto (schedule above 20 prunable layers)")
    schedule_start: Range = _f((0.0, 0.2), "schedule space: conv sparsity at the first conv", search=True)
    schedule_end: Range = _f((0.2, 0.7), "schedule space: conv sparsity at the last conv", search=True)
    schedule_curve: Range = _f((0.5, 3.0), "schedule space: exponent of the depth curve", search=True)
    # Training recipe (fixed within a search)
    baseline_epochs: float = _f(0, "dense baseline epochs (0 = per-dataset default: digits 30, cifar10 15)")
    baseline_lr: float = _f(0.05, "dense baseline learning rate")
    finetune_epochs: float = _f(0, "fine-tune epochs per trial (0 = per-dataset default: digits 3, cifar10 2)")
    batch_size: int = _f(128, "training batch size")
    augment: bool | None = _f(None, "random crop (reflect pad 4) + flip while training (auto: on for cifar10, "
                              "off for digits)")
    baseline_schedule: str = _f("auto", f"dense baseline LR schedule: {', '.join(SCHEDULES)} (auto: onecycle for "
                                "cifar10, cosine for digits)")
    train_subset: int = _f(0, "use only this many training images (0 = all); a reduced recipe for CPUs")
    val_fraction: float = _f(0.1, "fraction of the training data held out for validation (drives the search)")
    test_fraction: float = _f(0.1, "fraction held out for test when the dataset has no test split (report only)")
    latency_batch: int = _f(1, "batch size at which latency_ms is measured")
    # Where things go and run
    home: Path = _f(Path(".prune-search"), "work folder: MLflow DB and artifacts, caches, Ray and Optuna storage")
    tracking_uri: str | None = _f(None, "MLflow tracking URI (MLFLOW_TRACKING_URI wins; default: SQLite in --home)")
    experiment: str | None = _f(None, "MLflow experiment (default: prune-search/<model>/<dataset>)")
    name: str | None = _f(None, "search name, unique (default: <dataset>-<timestamp>)")
    address: str | None = _f(None, "Ray cluster to join (default: RAY_ADDRESS, else a local cluster)")
    cpus_per_trial: float = _f(1.0, "CPUs per trial; torch threads follow")
    gpus_per_trial: float = _f(0.0, "GPUs per trial; fractions pack several trials on one GPU")
    max_concurrent: int = _f(0, "trials at once (0 = as many as the resources allow)")
    storage_path: str | None = _f(None, "Ray Tune storage (shared path or URI; default: <home>/ray)")
    optuna_storage: str | None = _f(None, "Optuna RDB URL (default: SQLite optuna.db in --home)")
    resume: str | None = _f(None, "resume an interrupted search by name (or its Ray storage path) to its budget")

    @property
    def epochs(self) -> tuple[float, float]:
        recipe = AUTO_RECIPE[self.dataset]
        return (self.baseline_epochs or recipe.baseline_epochs, self.finetune_epochs or recipe.finetune_epochs)

    @property
    def augment_on(self) -> bool:
        return AUTO_RECIPE[self.dataset].augment if self.augment is None else self.augment

    @property
    def schedule(self) -> str:
        """The dense baseline's LR schedule, auto resolved."""
        return AUTO_RECIPE[self.dataset].baseline_schedule if self.baseline_schedule == "auto" else self.baseline_schedule

    @property
    def objective_metric(self) -> str:
        return OBJECTIVE_METRIC[self.objective]

    @property
    def experiment_name(self) -> str:
        return self.experiment or f"prune-search/{self.model}/{self.dataset}"

    def as_params(self) -> dict[str, str]:
        """Flat string params for MLflow, under the field names."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            text = ",".join(map(str, v)) if isinstance(v, tuple) else str(v)
            # Never log a database password: user:secret@host -> user:***@host.
            out[f.name] = re.sub(r"(://[^/:@]+:)[^@/]*@", r"\1***@", text) if f.name in SECRET_FIELDS else text
        return out


def searched_fields() -> list[str]:
    return [f.name for f in fields(SearchConfig) if f.metadata.get("search")]


# ---- parsing -------------------------------------------------------------------------------

def _parse_value(name: str, annotation: str, raw: Any) -> Any:
    """Coerce a CLI string or TOML value to the field's type; one clear error when it can't."""
    try:
        if annotation == "bool | None" and (raw is None or str(raw).lower() in ("auto", "none")):
            return None
        if annotation in ("bool", "bool | None"):
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("1", "true", "yes", "on"):
                return True
            if str(raw).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if annotation == "int":
            if isinstance(raw, float) and not raw.is_integer():
                raise ValueError
            return int(raw)
        if annotation == "float":
            return float(raw)
        if annotation == "Range":
            parts = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
            vals = tuple(float(p) for p in parts)
            if len(vals) == 1:
                vals = vals * 2
            if len(vals) != 2:
                raise ValueError
            return vals
        if annotation.startswith("tuple[str"):
            parts = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
            return tuple(str(p).strip() for p in parts if str(p).strip())
        if annotation.startswith("tuple[int"):
            parts = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
            return tuple(int(p) for p in parts)
        if annotation.startswith("Path"):
            return None if raw in (None, "") else Path(str(raw)).expanduser()
        return None if raw is None else str(raw)
    except (TypeError, ValueError):
        expected = {"int": "an integer", "float": "a number", "bool": "true or false",
                    "bool | None": "true, false or auto", "Range": "lo,hi numbers",
                    "tuple[int, ...]": "comma-separated integers"}.get(annotation, "a value")
        raise ConfigError(f"--{name.replace('_', '-')}: {raw!r} is not {expected}") from None


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints the whole usage on a bad flag; we want one line and exit 2."""

    def error(self, message: str):
        raise ConfigError(f"{message} (see --help)")


def build_parser(prog: str = "python -m search.run") -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog=prog,
        description="Search per-layer pruning ratios and methods for the best accuracy-vs-size Pareto front. "
        "Ray Tune runs the trials, Optuna (multi-objective) steers them, MLflow records everything.",
        epilog="Example: python -m search.run --budget 50 --dataset digits   "
        "Then: python -m search.ui (MLflow UI) and python -m search.dashboard (optuna-dashboard)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="TOML file with any of the settings below (flags win)")
    for f in fields(SearchConfig):
        default = f.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        if default is None and str(f.type) == "bool | None":
            shown = "auto"
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None, metavar=f.name.upper(),
                            help=f"{f.metadata['help']} (default: {shown})")
    return parser


def load_config(argv: list[str] | None) -> SearchConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    values: dict[str, Any] = {}
    if args.config is not None:
        values.update(_read_toml(args.config))
    values.update({k: v for k, v in vars(args).items() if k != "config" and v is not None})
    annotations = {f.name: str(f.type) for f in fields(SearchConfig)}
    coerced = {k: _parse_value(k, annotations[k], v) for k, v in values.items()}
    cfg = SearchConfig(**coerced)
    validate(cfg)
    return cfg


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"--config: {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config: {path} is not valid TOML ({exc})") from None
    known = {f.name for f in fields(SearchConfig)}
    flat = {k.replace("-", "_"): v for k, v in raw.items()}
    unknown = sorted(set(flat) - known)
    if unknown:
        raise ConfigError(f"--config: {path} has unknown setting(s) {', '.join(unknown)}; see --help for the known ones")
    return flat


def validate(cfg: SearchConfig) -> None:
    def bad(flag: str, value: Any, accepted: str) -> ConfigError:
        return ConfigError(f"--{flag}: {value!r} is not accepted; expected {accepted}")

    if cfg.budget <= 0:
        raise bad("budget", cfg.budget, "a positive integer")
    if cfg.dataset not in DATASETS:
        raise bad("dataset", cfg.dataset, " or ".join(DATASETS))
    if cfg.model not in MODELS:
        raise bad("model", cfg.model, ", ".join(sorted(MODELS)))
    known = method_names()
    for m in cfg.methods:
        if m not in known:
            raise bad("methods", m, f"a comma-separated subset of {', '.join(known)}")
    if not cfg.methods:
        raise bad("methods", "", f"a comma-separated subset of {', '.join(known)}")
    if cfg.objective not in OBJECTIVES:
        raise bad("objective", cfg.objective, ", ".join(OBJECTIVES))
    if cfg.space not in SPACES:
        raise bad("space", cfg.space, ", ".join(SPACES))
    if cfg.baseline_schedule not in ("auto", *SCHEDULES):
        raise bad("baseline-schedule", cfg.baseline_schedule, ", ".join(("auto", *SCHEDULES)))
    if cfg.sampler not in SAMPLERS:
        raise bad("sampler", cfg.sampler, ", ".join(SAMPLERS))
    for name in ("bounds_conv_early", "bounds_conv", "bounds_fc", "bounds_classifier", "global_sparsity",
                 "hybrid_filter_ratio"):
        lo, hi = getattr(cfg, name)
        if not (0.0 <= lo < 1.0 and 0.0 <= hi < 1.0) or lo > hi:
            raise bad(name.replace("_", "-"), f"{lo},{hi}", "lo,hi with 0 <= lo <= hi < 1")
    for name in ("finetune_lr", "taylor_batches", "lottery_rounds", "hybrid_temperature", "hybrid_alpha"):
        lo, hi = getattr(cfg, name)
        if not 0 < lo <= hi:
            raise bad(name.replace("_", "-"), f"{lo},{hi}", "lo,hi with 0 < lo <= hi")
    if not set(cfg.magnitude_scope) <= set(MAGNITUDE_SCOPES) or not cfg.magnitude_scope:
        raise bad("magnitude-scope", ",".join(cfg.magnitude_scope), f"a comma-separated subset of {', '.join(MAGNITUDE_SCOPES)}")
    if any(k < 0 for k in cfg.lottery_rewind_iter) or not cfg.lottery_rewind_iter:
        raise bad("lottery-rewind-iter", cfg.lottery_rewind_iter, "non-negative training iterations, e.g. 0,20")
    for name in ("val_fraction", "test_fraction"):
        if not 0.0 < getattr(cfg, name) < 0.5:
            raise bad(name.replace("_", "-"), getattr(cfg, name), "a fraction in (0, 0.5)")
    for name in ("batch_size", "latency_batch"):
        if getattr(cfg, name) <= 0:
            raise bad(name.replace("_", "-"), getattr(cfg, name), "a positive integer")
    if cfg.baseline_epochs < 0 or cfg.finetune_epochs < 0 or cfg.train_subset < 0:
        raise ConfigError("--baseline-epochs, --finetune-epochs and --train-subset must be >= 0")
    if cfg.cpus_per_trial <= 0 or cfg.gpus_per_trial < 0:
        raise bad("cpus-per-trial", cfg.cpus_per_trial, "CPUs > 0 and GPUs >= 0 per trial")
    if cfg.dataset == "cifar10" and cfg.data_dir is None:
        raise bad("data-dir", None, "a folder for cifar10 (local copy, or where to download it)")
    if cfg.data_dir is not None and not cfg.data_dir.is_dir():
        raise bad("data-dir", str(cfg.data_dir), "an existing folder")
    if cfg.name is not None and (not cfg.name or "/" in cfg.name or "'" in cfg.name):
        raise bad("name", cfg.name, "a non-empty name without '/' or quotes")


def config_to_dict(cfg: SearchConfig) -> dict[str, Any]:
    """JSON-safe form, for the search record a resume reads back."""
    out = {}
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        out[f.name] = list(v) if isinstance(v, tuple) else (str(v) if isinstance(v, Path) else v)
    return out


def config_from_dict(values: dict[str, Any]) -> SearchConfig:
    annotations = {f.name: str(f.type) for f in fields(SearchConfig)}
    return SearchConfig(**{k: _parse_value(k, annotations[k], v) for k, v in values.items() if k in annotations})


def replace(cfg: SearchConfig, **changes: Any) -> SearchConfig:
    return dataclasses.replace(cfg, **changes)
