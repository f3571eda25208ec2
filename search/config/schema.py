"""SearchConfig's fields: each setting of a search declared once, with its default, its help and
the values it accepts (`accepted`: an Interval, or the tuple of choices), from which the CLI,
the TOML keys, the validation and the MLflow params are all derived. The searched settings are
not written here: they are generated from their declarations next to the code that uses them
(the fine-tune's in trainables.trial_config, each method's in pruners/<method>.py)."""
from __future__ import annotations

from dataclasses import dataclass, field, fields, make_dataclass
from pathlib import Path

from mlflow_config.secrets import redact
from pruners.registry import method_names, method_settings
from pruners.settings import POSITIVE, RATIO, Interval, MethodSettings, SettingSpec
from search.anchored import ALLOCATIONS
from search.config.recipes import AUTO_RECIPE
from trainables.data import DATASETS
from trainables.loops import SCHEDULES
from trainables.measure import OBJECTIVE_METRIC, OBJECTIVES
from trainables.models import MODELS, model_label
from trainables.trial_config import FinetuneSettings

SAMPLERS = ("tpe", "nsga2", "gp", "random")
SPACES = ("auto", "per-layer", "schedule", "family", "anchored")
SECRET_FIELDS = ("optuna_storage", "tracking_uri")  # URLs that may carry a password
SEED_MAX = 2**32 - 1  # numpy (and so Optuna's samplers) take seeds below 2**32
FRACTION = Interval(0.0, 0.5, lo_open=True, hi_open=True)
COUNT = Interval(0, 100_000)

Range = tuple[float, float]
IntRange = tuple[int, int]


def _f(default, help: str, *, accepted: Interval | tuple | None = None, **meta):  # noqa: A002 - mirrors argparse
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable default")
    return field(default=default, metadata={"help": help, "accepted": accepted, **meta})


@dataclass(frozen=True)
class _WhatToSearch:
    budget: int = _f(50, "number of trials (each prunes, fine-tunes and measures one model)",
                     accepted=Interval(1, 100_000))
    dataset: str = _f("digits", f"dataset: {', '.join(DATASETS)} (digits is offline, from scikit-learn)",
                      accepted=DATASETS)
    data_dir: Path | None = _f(None, "cifar10: torchvision copy (cifar-10-batches-py/), image-folder tree "
                               "(train/<class>/*, optional test/), or a folder to download into; imagefolder: "
                               "DIR/train/<class>/* with optional DIR/val, DIR/test (else carved), or DIR/<class>/*")
    image_size: int = _f(0, "imagefolder: resize every image to NxN once when decoded (0 = keep the files' size)",
                         accepted=Interval(0, 4096))
    normalize: str = _f("auto", "input normalization: auto (mean/std of the training split), none (pixels in "
                        "[0, 1]), or MEAN,STD / M1,M2,M3,S1,S2,S3 as torchvision's Normalize takes them")
    model: str = _f("simplecnn", f"model: {', '.join(sorted(MODELS))}, or your factory: package.module:function or "
                    "path/to/file.py:function returning an nn.Module (given num_classes= if it takes it)")
    checkpoint: Path | None = _f(None, "trained weights of --model (a state_dict, or a dict with one under "
                                 "state_dict/model): no baseline training, its accuracy is measured")
    rewind_checkpoint: Path | None = _f(None, "with --checkpoint: the model's weights at initialization, for "
                                        "lottery to rewind to (without it lottery is left out)")
    methods: tuple[str, ...] = _f(tuple(method_names()), "comma-separated pruning methods to compare",
                                  accepted=tuple(method_names()))
    objective: str = _f("size", f"second objective, minimized against val accuracy: {', '.join(OBJECTIVES)}",
                        accepted=OBJECTIVES)
    sampler: str = _f("tpe", f"Optuna sampler: {', '.join(SAMPLERS)}", accepted=SAMPLERS)
    enqueue_recipe: bool = _f(True, "start with the article's uniform global-magnitude recipe (90/80/95/50/20%%, int8 "
                              "where quantize is searched) "
                              "so the front is never worse than it")
    seed: int = _f(0, "seed for the baseline, the splits, the sampler and every trial", accepted=Interval(0, SEED_MAX))
    split_seed: int | None = _f(None, "seed of the train/val/test split alone (default: --seed); fixed, searches "
                                "with different --seed share one split, and with --checkpoint one baseline",
                                accepted=Interval(0, SEED_MAX))
    # Per-layer sparsity bounds (the depth-aware policy)
    bounds_conv_early: Range = _f((0.0, 0.2), "sparsity bounds of the first conv layer (conservative)", accepted=RATIO)
    bounds_conv: Range = _f((0.0, 0.7), "sparsity bounds of later conv layers", accepted=RATIO)
    bounds_fc: Range = _f((0.0, 0.98), "sparsity bounds of hidden fully connected layers (aggressive)", accepted=RATIO)
    bounds_classifier: Range = _f((0.0, 0.5), "sparsity bounds of the final classifier (careful)", accepted=RATIO)
    sensitivity_drop: float = _f(0.0, "cap each layer's upper bound at the largest ratio where pruning that layer "
                                 "alone (BatchNorm recalibrated, no fine-tune) costs at most this much val "
                                 "accuracy, e.g. 0.05; a per-layer scan cached with the baseline (0 = off)",
                                 accepted=Interval(0.0, 1.0))
    screen: int = _f(0, "cheap screening: score this many random configurations by val accuracy right after "
                     "pruning (BatchNorm recalibrated, no fine-tune; seconds each) before the search (0 = off)",
                     accepted=COUNT)
    screen_keep: int = _f(0, "with --screen: enqueue at most this many of the screened front as full trials "
                          "(0 = a quarter of the budget); never more than the budget's enqueued share", accepted=COUNT)


@dataclass(frozen=True)
class _HowToRun:
    # Layer-wise space: one ratio per layer, or a compact depth schedule for deep models
    space: str = _f("auto", "per-layer (one ratio per layer), schedule (conv ratio = start + (end-start) * "
                    "depth^curve, per-layer for FC), family (two numbers for every layer: an overall target "
                    "and an ERK-shaped spread, see --family-*), anchored (a one-shot allocation at a target, "
                    "then one offset per layer, see --anchor-*), or auto (schedule above 20 prunable layers)",
                    accepted=SPACES)
    schedule_start: Range = _f((0.0, 0.2), "schedule space: conv sparsity at the first conv", search=True,
                               accepted=RATIO)
    schedule_end: Range = _f((0.2, 0.7), "schedule space: conv sparsity at the last conv", search=True,
                             accepted=RATIO)
    schedule_curve: Range = _f((0.5, 3.0), "schedule space: exponent of the depth curve", search=True,
                               accepted=POSITIVE)
    family_target: Range = _f((0.2, 0.98), "family space: fraction of the method's prunable weights removed "
                              "overall", search=True, accepted=RATIO)
    family_shape: Range = _f((0.0, 1.5), "family space: spread of that removal, density ~ ERK factor^shape "
                             "(0 uniform, 1 ERK: larger layers pruned harder), inside the depth-aware bounds",
                             search=True, accepted=Interval(0.0, 3.0))
    anchor_target: Range = _f((0.2, 0.98), "anchored space: fraction of the weights the one-shot anchor removes "
                              "overall", search=True, accepted=RATIO)
    anchor_allocation: tuple[str, ...] = _f(ALLOCATIONS, "anchored space: one-shot allocations the anchor may use "
                                            "(global threshold, LAMP, ERK)", search=True, accepted=ALLOCATIONS)
    anchor_width: float = _f(0.2, "anchored space: how far one layer's offset may move its anchored ratio "
                             "(early convs and the classifier mostly down, hidden FC layers mostly up)",
                             accepted=Interval(0.0, 1.0))
    # Training recipe (fixed within a search)
    baseline_epochs: float = _f(0, "dense baseline epochs (0 = per-dataset default: digits 30, cifar10 15)",
                                accepted=Interval(0, 10_000))
    baseline_lr: float = _f(0.05, "dense baseline learning rate", accepted=Interval(0.0, 1000.0, lo_open=True))
    finetune_epochs: float = _f(0, "fine-tune epochs per trial (0 = per-dataset default: digits 3, cifar10 2)",
                                accepted=Interval(0, 10_000))
    batch_size: int = _f(128, "training batch size", accepted=Interval(1, 65_536))
    augment: bool | None = _f(None, "random crop (reflect pad 4) + flip while training (auto: on for cifar10, "
                              "off for digits)")
    baseline_schedule: str = _f("auto", f"dense baseline LR schedule: {', '.join(SCHEDULES)} (auto: onecycle for "
                                "cifar10, cosine for digits)", accepted=("auto", *SCHEDULES))
    train_subset: int = _f(0, "use only this many training images (0 = all); a reduced recipe for CPUs",
                           accepted=Interval(0, 1_000_000_000))
    val_fraction: float = _f(0.1, "fraction of the training data held out for validation (drives the search)",
                             accepted=FRACTION)
    test_fraction: float = _f(0.1, "fraction held out for test when the dataset has no test split (report only)",
                              accepted=FRACTION)
    latency_batch: int = _f(1, "batch size at which latency_ms is measured", accepted=Interval(1, 4096))
    # Where things go and run
    home: Path = _f(Path(".prune-search"), "work folder: MLflow DB and artifacts, caches, Ray and Optuna storage")
    tracking_uri: str | None = _f(None, "MLflow tracking URI (MLFLOW_TRACKING_URI wins; default: SQLite in --home)")
    experiment: str | None = _f(None, "MLflow experiment (default: prune-search/<model>/<dataset>)")
    name: str | None = _f(None, "search name, unique (default: <dataset>-<timestamp>)")
    address: str | None = _f(None, "Ray cluster to join (default: RAY_ADDRESS, else a local cluster)")
    cpus_per_trial: float = _f(1.0, "CPUs per trial; torch threads follow", accepted=Interval(0.0, 1024, lo_open=True))
    gpus_per_trial: float = _f(0.0, "GPUs per trial; fractions pack several trials on one GPU",
                               accepted=Interval(0, 64))
    max_concurrent: int = _f(0, "trials at once (0 = as many as the resources allow)", accepted=COUNT)
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
    def data_seed(self) -> int:
        """The seed of the data split: --split-seed, else --seed."""
        return self.seed if self.split_seed is None else self.split_seed

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
    return spec.name, _annotation(spec), _f(spec.search, f"{spec.help}; {what}", search=True, spec=spec)


def _copy_fields(cls) -> list:
    return [(f.name, f.type, field(default=f.default, metadata=f.metadata)) for f in fields(cls)]


# The CLI lists the fields in this order: what to search, the searched settings, how to run.
SearchConfig = make_dataclass(
    "SearchConfig",
    [*_copy_fields(_WhatToSearch), *(_search_field(spec) for spec in SEARCHED.values()), *_copy_fields(_HowToRun)],
    bases=(_Derived,), frozen=True,
)
SearchConfig.__module__ = "search.config"  # so pickle (Ray, the search record) finds it where users import it
SearchConfig.__doc__ = "Every setting of a search (see search.config.schema); searched settings are generated."


def searched_fields() -> list[str]:
    return [f.name for f in fields(SearchConfig) if f.metadata.get("search")]


def searched_values(cfg, settings_type: type[MethodSettings]) -> dict:
    """The ranges / choices `cfg` searches for one owner's settings, by name."""
    return {spec.name: getattr(cfg, spec.name) for spec in settings_type.specs()}
