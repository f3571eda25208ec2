"""SearchConfig: every setting of a search, spelled once.

The dataclass generates the CLI (`--flag-name`), reads TOML config files (`--config`), and its
field names are the keys used in Optuna's space, Ray Tune's trial config and MLflow params.
Searched settings are ranges "lo,hi" (a single value fixes them).
Precedence: defaults < config file < command-line flags.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field, fields, make_dataclass
from pathlib import Path
from typing import Any

from mlflow_config import stores
from mlflow_config.secrets import redact
from pruners.registry import method_names, method_settings
from pruners.settings import POSITIVE, RATIO, Interval, MethodSettings, SettingSpec
from search.results.cli_kit import NAME_PATTERN, NAME_RULE, OneLineParser, UsageError
from trainables.data import DATASETS, parse_normalize
from trainables.loops import SCHEDULES, total_steps
from trainables.measure import OBJECTIVE_METRIC, OBJECTIVES
from trainables.models import MODELS, is_factory_spec, model_label, resolve_spec
from trainables.trial_config import FinetuneSettings

SAMPLERS = ("tpe", "nsga2", "gp", "random")
SPACES = ("auto", "per-layer", "schedule", "family")
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
AUTO_RECIPE = {"digits": Recipe(30, 3, False, "cosine"), "cifar10": Recipe(15, 2, True, "onecycle"),
               # The user's images: no crop or flip unless asked (a flip can change what an image means).
               "imagefolder": Recipe(15, 2, False, "cosine")}


class ConfigError(UsageError):
    """Bad user input; the CLI prints it as one line and exits 2."""


Range = tuple[float, float]
IntRange = tuple[int, int]
SEED_MAX = 2**32 - 1  # numpy (and so Optuna's samplers) take seeds below 2**32


def _f(default, help: str, **meta):  # noqa: A002 - mirrors argparse
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable default")
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class _WhatToSearch:
    # What to search
    budget: int = _f(50, "number of trials (each prunes, fine-tunes and measures one model)")
    dataset: str = _f("digits", f"dataset: {', '.join(DATASETS)} (digits is offline, from scikit-learn)")
    data_dir: Path | None = _f(None, "cifar10: torchvision copy (cifar-10-batches-py/), image-folder tree "
                               "(train/<class>/*, optional test/), or a folder to download into; imagefolder: "
                               "DIR/train/<class>/* with optional DIR/val, DIR/test (else carved), or DIR/<class>/*")
    image_size: int = _f(0, "imagefolder: resize every image to NxN once when decoded (0 = keep the files' size)")
    normalize: str = _f("auto", "input normalization: auto (mean/std of the training split), none (pixels in "
                        "[0, 1]), or MEAN,STD / M1,M2,M3,S1,S2,S3 as torchvision's Normalize takes them")
    model: str = _f("simplecnn", f"model: {', '.join(sorted(MODELS))}, or your factory: package.module:function or "
                    "path/to/file.py:function returning an nn.Module (given num_classes= if it takes it)")
    checkpoint: Path | None = _f(None, "trained weights of --model (a state_dict, or a dict with one under "
                                 "state_dict/model): no baseline training, its accuracy is measured")
    rewind_checkpoint: Path | None = _f(None, "with --checkpoint: the model's weights at initialization, for "
                                        "lottery to rewind to (without it lottery is left out)")
    methods: tuple[str, ...] = _f(tuple(method_names()), "comma-separated pruning methods to compare")
    objective: str = _f("size", f"second objective, minimized against val accuracy: {', '.join(OBJECTIVES)}")
    sampler: str = _f("tpe", f"Optuna sampler: {', '.join(SAMPLERS)}")
    enqueue_recipe: bool = _f(True, "start with the article's uniform global-magnitude recipe (90/80/95/50/20%%, int8 "
                              "where quantize is searched) "
                              "so the front is never worse than it")
    seed: int = _f(0, "seed for the baseline, the splits, the sampler and every trial")
    # Per-layer sparsity bounds (the depth-aware policy)
    bounds_conv_early: Range = _f((0.0, 0.2), "sparsity bounds of the first conv layer (conservative)")
    bounds_conv: Range = _f((0.0, 0.7), "sparsity bounds of later conv layers")
    bounds_fc: Range = _f((0.0, 0.98), "sparsity bounds of hidden fully connected layers (aggressive)")
    bounds_classifier: Range = _f((0.0, 0.5), "sparsity bounds of the final classifier (careful)")
    sensitivity_drop: float = _f(0.0, "cap each layer's upper bound at the largest ratio where pruning that layer "
                                 "alone (BatchNorm recalibrated, no fine-tune) costs at most this much val "
                                 "accuracy, e.g. 0.05; a per-layer scan cached with the baseline (0 = off)")
    screen: int = _f(0, "cheap screening: score this many random configurations by val accuracy right after "
                     "pruning (BatchNorm recalibrated, no fine-tune; seconds each) before the search (0 = off)")
    screen_keep: int = _f(0, "with --screen: enqueue at most this many of the screened front as full trials "
                          "(0 = a quarter of the budget); never more than the budget's enqueued share")


@dataclass(frozen=True)
class _HowToRun:
    # Layer-wise space: one ratio per layer, or a compact depth schedule for deep models
    space: str = _f("auto", "per-layer (one ratio per layer), schedule (conv ratio = start + (end-start) * "
                    "depth^curve, per-layer for FC), family (two numbers for every layer: an overall target "
                    "and an ERK-shaped spread, see --family-*), or auto (schedule above 20 prunable layers)")
    schedule_start: Range = _f((0.0, 0.2), "schedule space: conv sparsity at the first conv", search=True)
    schedule_end: Range = _f((0.2, 0.7), "schedule space: conv sparsity at the last conv", search=True)
    schedule_curve: Range = _f((0.5, 3.0), "schedule space: exponent of the depth curve", search=True)
    family_target: Range = _f((0.2, 0.98), "family space: fraction of the method's prunable weights removed "
                              "overall", search=True)
    family_shape: Range = _f((0.0, 1.5), "family space: spread of that removal, density ~ ERK factor^shape "
                             "(0 uniform, 1 ERK: larger layers pruned harder), inside the depth-aware bounds",
                             search=True)
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


class _Derived:
    """SearchConfig's derived values; the fields are generated below."""

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
        return self.experiment or f"prune-search/{model_label(self.model)}/{self.dataset}"

    def as_params(self) -> dict[str, str]:
        """Flat string params for MLflow, under the field names."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            text = ",".join(map(str, v)) if isinstance(v, tuple) else str(v)
            out[f.name] = redact(text) if f.name in SECRET_FIELDS else text
        return out


# ---- the searched settings, generated from their declarations ------------------------------
# Every searched setting is declared once, next to the code that uses it: the fine-tune's in
# trainables.trial_config.FinetuneSettings, each method's in its pruners/<method>.py. From that
# declaration come the SearchConfig field (so the CLI flag, TOML key and MLflow param), the
# validation below, search.space's Optuna space, and the trial's typed settings.

def setting_groups() -> dict[str, type[MethodSettings]]:
    """Who owns which searched settings: "finetune" (every trial), then each method by name."""
    return {"finetune": FinetuneSettings, **method_settings()}


def _searched_specs() -> dict[str, SettingSpec]:
    out: dict[str, SettingSpec] = {}
    for owner, settings_type in setting_groups().items():
        for spec in settings_type.specs():
            if spec.name in out or spec.name in {f.name for f in (*fields(_WhatToSearch), *fields(_HowToRun))}:
                raise TypeError(f"setting {spec.name!r} of {owner} is declared twice")
            out[spec.name] = spec
    return out


SEARCHED: dict[str, SettingSpec] = _searched_specs()


def _annotation(spec: SettingSpec) -> str:
    if spec.kind == "choice":
        return f"tuple[{spec.value_type.__name__}, ...]"
    return "IntRange" if spec.kind == "int" else "Range"


def _search_field(spec: SettingSpec):
    what = "a comma-separated list" if spec.kind == "choice" else "lo,hi (one value fixes it)"
    return spec.name, _annotation(spec), _f(spec.search, f"{spec.help}; {what}", search=True)


def _copy_fields(cls) -> list:
    return [(f.name, f.type, field(default=f.default, metadata=f.metadata)) for f in fields(cls)]


# The CLI lists the fields in this order: what to search, the searched settings, how to run.
SearchConfig = make_dataclass(
    "SearchConfig",
    [*_copy_fields(_WhatToSearch), *(_search_field(spec) for spec in SEARCHED.values()), *_copy_fields(_HowToRun)],
    bases=(_Derived,), frozen=True,
)
SearchConfig.__module__ = __name__  # so pickle (Ray, the search record) finds it here
SearchConfig.__doc__ = "Every setting of a search (see the module docstring); searched settings are generated."


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
            return _integer(raw)
        if annotation == "float":
            return _finite(raw)
        if annotation in ("Range", "IntRange"):
            parts = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
            vals = tuple(_finite(p) for p in parts)
            if annotation == "IntRange":
                if not all(v.is_integer() for v in vals):
                    raise ValueError
                vals = tuple(int(v) for v in vals)
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
            return tuple(_integer(p) for p in parts)
        if annotation.startswith("tuple[float"):
            parts = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
            return tuple(_finite(p) for p in parts)
        if annotation.startswith("Path"):
            return None if raw in (None, "") else Path(str(raw)).expanduser()
        return None if raw is None else str(raw)
    except (TypeError, ValueError, OverflowError):
        expected = {"int": "an integer", "float": "a finite number", "bool": "true or false",
                    "bool | None": "true, false or auto",
                    "Range": "lo,hi finite numbers (or one number)", "IntRange": "lo,hi integers (or one integer)",
                    "tuple[int, ...]": "comma-separated integers",
                    "tuple[float, ...]": "comma-separated finite numbers"}.get(annotation, "a value")
        shown = ",".join(map(str, raw)) if isinstance(raw, (list, tuple)) else raw
        raise ConfigError(f"--{name.replace('_', '-')}: {shown!r} is not {expected}") from None


def _finite(value: Any) -> float:
    """A number as a user writes one: a TOML int or float (never a bool), or plain ASCII decimal
    text (Python's float() would also take '1_000', ' 5 ', fullwidth digits, 'inf' and 'nan')."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError
    if isinstance(value, str) and not _NUMBER.fullmatch(value):
        raise ValueError
    number = float(value)
    if not math.isfinite(number):
        raise ValueError
    return number


_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def _integer(value: Any) -> int:
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value, re.ASCII):
        return int(value)  # exactly, however large: the range check names the value as typed
    number = _finite(value)
    if not number.is_integer():
        raise ValueError
    return int(number)


def build_parser(prog: str = "python -m search.run") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Search per-layer pruning ratios and methods for the best accuracy-vs-size Pareto front. "
        "Ray Tune runs the trials, Optuna (multi-objective) steers them, MLflow records everything.",
        epilog="Example: python -m search.run --budget 50 --dataset digits   "
        "Then: prune-search ui (MLflow UI) and prune-search dashboard (optuna-dashboard)",
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


_NEGATIVE_VALUE = re.compile(r"-(\d|\.\d|inf|nan)", re.IGNORECASE)


_TEXT_FLAGS = ("--name", "--experiment")  # free text: a value such as "-x" is still theirs


def _join_negative_values(argv: list[str]) -> list[str]:
    """`--bounds-fc -0.1,0.5` or `--name -x`: argparse takes a value starting with '-' for a flag
    unless it is a plain negative number, and then names no value in its error. Joined as
    `--bounds-fc=-0.1,0.5`, the value reaches validation, whose message names it."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if (token.startswith("--") and "=" not in token and i + 1 < len(argv)
                and (_NEGATIVE_VALUE.match(argv[i + 1]) or (token in _TEXT_FLAGS and argv[i + 1].startswith("-")))):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
        else:
            out.append(token)
            i += 1
    return out


def load_config(argv: list[str] | None, prog: str = "python -m search.run") -> SearchConfig:
    import sys

    parser = build_parser(prog)
    args = parser.parse_args(_join_negative_values(list(sys.argv[1:] if argv is None else argv)))
    values: dict[str, Any] = {}
    if args.config is not None:
        values.update(_read_toml(args.config))
    values.update({k: v for k, v in vars(args).items() if k != "config" and v is not None})
    annotations = {f.name: str(f.type) for f in fields(SearchConfig)}
    coerced = {k: _parse_value(k, annotations[k], v) for k, v in values.items()}
    if "resume" in values and "budget" not in values:
        coerced["budget"] = RESUME_BUDGET  # the recorded budget; --budget N with --resume extends it
    cfg = _checkpoint_defaults(SearchConfig(**coerced), given=set(values))
    validate(cfg)
    return cfg


RESUME_BUDGET = 0  # with --resume and no --budget: keep the search's own budget


def _checkpoint_defaults(cfg: SearchConfig, given: set[str]) -> SearchConfig:
    """A factory file's path made absolute (workers and later tools read it from anywhere). With a
    checkpoint the only early weights are --rewind-checkpoint's (iteration 0): a method that rewinds
    (lottery) rewinds there by default, and without one it cannot run, so it is left out of the
    default methods (run_search says so); asked for by name, validation rejects it."""
    changes: dict[str, Any] = {"model": resolve_spec(cfg.model)}
    for name in ("tracking_uri", "optuna_storage"):  # absolute SQLite paths, a driver psycopg2 has
        if getattr(cfg, name):
            changes[name] = stores.normalize(getattr(cfg, name))
    for name in ("checkpoint", "rewind_checkpoint"):
        if getattr(cfg, name) is not None:
            changes[name] = getattr(cfg, name).expanduser().absolute()
    if cfg.checkpoint is not None:
        groups = setting_groups()
        for method in (m for m in cfg.methods if m in groups):  # unknown names: validate() says so
            problem = groups[method].check_against_baseline(searched_values(cfg, groups[method]), 0)
            if problem is not None and problem[0] not in given:
                changes[problem[0]] = (0,)
        if cfg.rewind_checkpoint is None and "methods" not in given:
            changes["methods"] = tuple(m for m in cfg.methods if m not in rewinding_methods(cfg))
    return dataclasses.replace(cfg, **changes)


def rewinding_methods(cfg: SearchConfig) -> list[str]:
    """Methods that need the baseline's weights from early in training (lottery)."""
    groups = setting_groups()
    return [m for m in cfg.methods if m in groups and groups[m].baseline_checkpoints(searched_values(cfg, groups[m]))]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"--config: {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--config: {path} is not valid TOML ({exc})") from None
    except OSError as exc:  # a folder, no permission
        raise ConfigError(f"--config: {str(path)!r} cannot be read ({exc.strerror}); expected a TOML file") from None
    known = {f.name for f in fields(SearchConfig)}
    flat = {k.replace("-", "_"): v for k, v in raw.items()}
    unknown = sorted(set(flat) - known)
    if unknown:
        raise ConfigError(f"--config: {path} has unknown setting(s) {', '.join(unknown)}; see --help for the known ones")
    return flat


FRACTION = Interval(0.0, 0.5, lo_open=True, hi_open=True)

# Single numbers: field -> accepted interval.
SCALAR_RULES: dict[str, Interval] = {
    "budget": Interval(1, 100_000), "seed": Interval(0, SEED_MAX), "baseline_epochs": Interval(0, 10_000),
    "baseline_lr": Interval(0.0, 1000.0, lo_open=True), "finetune_epochs": Interval(0, 10_000),
    "batch_size": Interval(1, 65_536), "train_subset": Interval(0, 1_000_000_000), "image_size": Interval(0, 4096),
    "sensitivity_drop": Interval(0.0, 1.0), "screen": Interval(0, 100_000), "screen_keep": Interval(0, 100_000),
    "val_fraction": FRACTION, "test_fraction": FRACTION, "latency_batch": Interval(1, 4096),
    "cpus_per_trial": Interval(0.0, 1024, lo_open=True), "gpus_per_trial": Interval(0, 64),
    "max_concurrent": Interval(0, 100_000),
}
# Ranges lo,hi of the layer policy and the schedule space: both ends inside the interval, lo <= hi.
RANGE_RULES: dict[str, Interval] = {
    "bounds_conv_early": RATIO, "bounds_conv": RATIO, "bounds_fc": RATIO, "bounds_classifier": RATIO,
    "schedule_start": RATIO, "schedule_end": RATIO, "schedule_curve": POSITIVE,
    "family_target": RATIO, "family_shape": Interval(0.0, 3.0),
}
def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _bad(name: str, value: Any, accepted: str) -> ConfigError:
    shown = ",".join(map(str, value)) if isinstance(value, tuple) else value
    return ConfigError(f"{_flag(name)}: {shown!r} is not accepted; expected {accepted}")


def _check_choices(name: str, values: tuple, known: tuple) -> None:
    accepted = f"a comma-separated subset of {', '.join(known)}, each once"
    if not values or len(set(values)) != len(values):
        raise _bad(name, values, accepted)
    for v in values:
        if v not in known:
            raise _bad(name, v, accepted)


def _check_searched(spec: SettingSpec, value: tuple) -> None:
    """A searched setting: a range lo,hi of accepted values, or a list of accepted choices."""
    if spec.is_range:
        lo, hi = value
        if not (spec.accepts(lo) and spec.accepts(hi) and lo <= hi):
            # one number given for a range: shown as typed
            accepted = spec.accepted_text().replace(spec.name.replace("_", "-"), "lo <= hi")
            raise _bad(spec.name, lo if lo == hi else value, f"lo,hi with {accepted}")
    elif isinstance(spec.accepted, tuple):
        _check_choices(spec.name, value, spec.accepted)
    elif not value or len(set(value)) != len(value) or not all(spec.accepts(v) for v in value):
        raise _bad(spec.name, value, f"comma-separated values, each once, with {spec.accepted_text()}")


def validate(cfg: SearchConfig) -> None:
    """Every setting on its own and against the others; what needs the data's size (rewind
    points vs the baseline's length) is `check_against_data`, called by search.preflight."""
    if cfg.model not in MODELS and not is_factory_spec(cfg.model):
        raise _bad("model", cfg.model, f"{', '.join(sorted(MODELS))}, or a factory package.module:function or "
                   "path/to/file.py:function")
    for name, value, known in (("dataset", cfg.dataset, DATASETS),
                               ("objective", cfg.objective, OBJECTIVES), ("space", cfg.space, SPACES),
                               ("sampler", cfg.sampler, SAMPLERS),
                               ("baseline_schedule", cfg.baseline_schedule, ("auto", *SCHEDULES))):
        if value not in known:
            raise _bad(name, value, " or ".join(known) if len(known) == 2 else ", ".join(known))
    _check_choices("methods", cfg.methods, tuple(method_names()))
    for name, rule in SCALAR_RULES.items():
        if name == "budget" and cfg.resume and cfg.budget == RESUME_BUDGET:
            continue
        if not rule.holds(getattr(cfg, name)):
            raise _bad(name, getattr(cfg, name), rule.text(name.replace("_", "-")))
    if cfg.gpus_per_trial > 1 and not float(cfg.gpus_per_trial).is_integer():
        raise _bad("gpus_per_trial", cfg.gpus_per_trial, "a fraction below 1 (trials share a GPU) or a whole number")
    for name, rule in RANGE_RULES.items():
        lo, hi = getattr(cfg, name)
        if not (rule.holds(lo) and rule.holds(hi) and lo <= hi):
            raise _bad(name, (lo, hi), f"lo,hi with {rule.text('lo <= hi')}")
    for spec in SEARCHED.values():
        _check_searched(spec, getattr(cfg, spec.name))
    if cfg.dataset == "digits" and cfg.data_dir is not None:
        raise _bad("data_dir", str(cfg.data_dir), "no --data-dir with --dataset digits (scikit-learn ships it); "
                   "--dataset imagefolder reads a folder")
    if cfg.dataset == "cifar10" and cfg.data_dir is None:
        raise _bad("data_dir", None, "a folder for cifar10 (local copy, or where to download it)")
    if cfg.dataset == "imagefolder" and cfg.data_dir is None:
        raise _bad("data_dir", None, "a folder for imagefolder: DIR/train/<class>/* (optional DIR/val, DIR/test)")
    if cfg.image_size and cfg.dataset != "imagefolder":
        raise _bad("image_size", cfg.image_size, f"0 for {cfg.dataset} (resizing is for --dataset imagefolder)")
    try:
        parse_normalize(cfg.normalize)
    except ValueError:
        raise _bad("normalize", cfg.normalize, "auto, none, MEAN,STD or M1,M2,M3,S1,S2,S3 (finite, std > 0)") from None
    _validate_checkpoints(cfg)
    if cfg.data_dir is not None and not cfg.data_dir.is_dir():
        raise _bad("data_dir", str(cfg.data_dir), "an existing folder")
    if cfg.name is not None and not NAME_PATTERN.fullmatch(cfg.name):
        raise _bad("name", cfg.name, NAME_RULE)
    if cfg.experiment is not None and not (cfg.experiment.strip() and cfg.experiment.isprintable()):
        raise _bad("experiment", cfg.experiment, "a non-empty name of printable characters")


def _validate_checkpoints(cfg: SearchConfig) -> None:
    for name in ("checkpoint", "rewind_checkpoint"):
        path = getattr(cfg, name)
        if path is not None and not path.is_file():
            raise _bad(name, str(path), "an existing file saved with torch.save")
    if cfg.rewind_checkpoint is not None and cfg.checkpoint is None:
        raise _bad("rewind_checkpoint", str(cfg.rewind_checkpoint), "no value without --checkpoint (a trained "
                   "baseline keeps its own rewind points)")
    if cfg.checkpoint is None:
        return
    rewinding = rewinding_methods(cfg)
    if rewinding and cfg.rewind_checkpoint is None:
        raise _bad("methods", cfg.methods, f"methods without {', '.join(rewinding)} when --checkpoint has no "
                   "--rewind-checkpoint (it rewinds to early-training weights, which a trained checkpoint lacks)")
    groups = setting_groups()
    for method in rewinding:
        problem = groups[method].check_against_baseline(searched_values(cfg, groups[method]), 0)
        if problem is not None:
            raise _bad(problem[0], getattr(cfg, problem[0]), "0 with --checkpoint (the only early weights are "
                       "--rewind-checkpoint's)")


def searched_values(cfg: SearchConfig, settings_type: type[MethodSettings]) -> dict[str, Any]:
    """The ranges / choices `cfg` searches for one owner's settings, by name."""
    return {spec.name: getattr(cfg, spec.name) for spec in settings_type.specs()}


def rewind_points(cfg: SearchConfig, n_train: int) -> tuple[int, ...]:
    """Iterations whose weights the baseline keeps (0, plus what the searched methods ask for:
    lottery's rewind points, fractions of the baseline's iterations on `n_train` images)."""
    groups = setting_groups()
    steps = total_steps(n_train, cfg.batch_size, cfg.epochs[0])
    asked = {k for m in cfg.methods for k in groups[m].baseline_checkpoints(searched_values(cfg, groups[m]), steps)}
    return tuple(sorted(asked | {0}))


def check_against_data(cfg: SearchConfig, n_train: int, n_val: int, classes: list[str]) -> None:
    """Cross-checks that need the split sizes (known before decoding, see trainables.data.plan_splits)."""
    where = str(cfg.data_dir) if cfg.data_dir is not None else cfg.dataset
    if len(classes) < 2:
        raise _bad("data_dir", where, f"at least 2 classes (found {len(classes)}: {', '.join(classes) or 'none'})")
    if n_train < 1 or n_val < 1:
        raise _bad("train_subset" if cfg.train_subset else "val_fraction",
                   cfg.train_subset or cfg.val_fraction,
                   f"settings that leave training and validation images (train {n_train}, val {n_val})")
    n_batches = math.ceil(n_train / cfg.batch_size)
    for method in cfg.methods:
        for spec in (s for s in setting_groups()[method].specs() if s.counts_batches):
            lo, hi = getattr(cfg, spec.name)
            if lo > n_batches:
                raise _bad(spec.name, lo if lo == hi else (lo, hi),
                           f"at most {n_batches}, the training split's batches ({n_train} images / batch "
                           f"{cfg.batch_size}); a range reaching above it is clipped per trial, with a note")
    if cfg.checkpoint is not None:
        return  # nothing is trained: the only rewind point is --rewind-checkpoint's (iteration 0)
    total = total_steps(n_train, cfg.batch_size, cfg.epochs[0])
    groups = setting_groups()
    for method in cfg.methods:
        problem = groups[method].check_against_baseline(searched_values(cfg, groups[method]), total)
        if problem is not None:
            name, accepted = problem
            raise _bad(name, getattr(cfg, name), f"{accepted} ({n_train} images / batch {cfg.batch_size} x "
                       f"{cfg.epochs[0]:g} epochs); lower them or raise --baseline-epochs")


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
