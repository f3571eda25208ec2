"""Validation, once and centrally: every field against the values it declares (`accepted` in
search.config.schema, and each searched setting's own declaration), then what the fields say
together; `check_against_data` adds what needs the split sizes. Each failure is one ConfigError
naming the flag, the value and what is accepted (scikit-learn's `_validate_params` is the model:
the constraints are data, the checking is one loop)."""
from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from pruners.settings import Interval, SettingSpec
from search.config.coercion import bad
from search.config.schema import SearchConfig, searched_values, setting_groups
from search.results.cli_kit import NAME_PATTERN, NAME_RULE
from trainables.data import parse_normalize
from trainables.loops import total_steps
from trainables.models import MODELS, is_factory_spec

RESUME_BUDGET = 0  # with --resume and no --budget: keep the search's own budget


def _choice_text(known: tuple) -> str:
    return " or ".join(known) if len(known) == 2 else ", ".join(known)


def check_choices(name: str, values: tuple, known: tuple) -> None:
    accepted = f"a comma-separated subset of {', '.join(known)}, each once"
    if not values or len(set(values)) != len(values):
        raise bad(name, values, accepted)
    for v in values:
        if v not in known:
            raise bad(name, v, accepted)


def _check_declared(name: str, annotation: str, accepted: Interval | tuple, value: Any) -> None:
    """One field against its declared `accepted`: a choice, a subset of choices, a number in an
    interval, or a range lo,hi with both ends in it."""
    if isinstance(accepted, tuple):
        if annotation.startswith("tuple["):
            check_choices(name, value, accepted)
        elif value not in accepted:
            raise bad(name, value, _choice_text(accepted))
    elif annotation in ("Range", "IntRange"):
        lo, hi = value
        if not (accepted.holds(lo) and accepted.holds(hi) and lo <= hi):
            raise bad(name, (lo, hi), f"lo,hi with {accepted.text('lo <= hi')}")
    elif not accepted.holds(value):
        raise bad(name, value, accepted.text(name.replace("_", "-")))


def _check_searched(spec: SettingSpec, value: tuple) -> None:
    """A searched setting: a range lo,hi of accepted values, or a list of accepted choices."""
    if spec.is_range:
        lo, hi = value
        if not (spec.accepts(lo) and spec.accepts(hi) and lo <= hi):
            # one number given for a range: shown as typed
            accepted = spec.accepted_text().replace(spec.name.replace("_", "-"), "lo <= hi")
            raise bad(spec.name, lo if lo == hi else value, f"lo,hi with {accepted}")
    elif isinstance(spec.accepted, tuple):
        check_choices(spec.name, value, spec.accepted)
    elif not value or len(set(value)) != len(value) or not all(spec.accepts(v) for v in value):
        raise bad(spec.name, value, f"comma-separated values, each once, with {spec.accepted_text()}")


def validate(cfg: SearchConfig) -> None:
    """Every setting on its own (the declared constraints), then against the others."""
    if cfg.model not in MODELS and not is_factory_spec(cfg.model):
        raise bad("model", cfg.model, f"{', '.join(sorted(MODELS))}, or a factory package.module:function or "
                  "path/to/file.py:function")
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if f.name == "budget" and cfg.resume and value == RESUME_BUDGET:
            continue  # the recorded budget, checked by the resume
        if value is None:
            continue  # unset: the default the help describes
        if f.metadata.get("spec") is not None:
            _check_searched(f.metadata["spec"], value)
        elif f.metadata.get("accepted") is not None:
            _check_declared(f.name, str(f.type), f.metadata["accepted"], value)
    _check_together(cfg)
    _validate_checkpoints(cfg)
    if cfg.data_dir is not None and not cfg.data_dir.is_dir():
        raise bad("data_dir", str(cfg.data_dir), "an existing folder")
    if cfg.name is not None and not NAME_PATTERN.fullmatch(cfg.name):
        raise bad("name", cfg.name, NAME_RULE)
    if cfg.experiment is not None and not (cfg.experiment.strip() and cfg.experiment.isprintable()):
        raise bad("experiment", cfg.experiment, "a non-empty name of printable characters")


def _check_together(cfg: SearchConfig) -> None:
    if cfg.gpus_per_trial > 1 and not float(cfg.gpus_per_trial).is_integer():
        raise bad("gpus_per_trial", cfg.gpus_per_trial, "a fraction below 1 (trials share a GPU) or a whole number")
    if cfg.dataset == "digits" and cfg.data_dir is not None:
        raise bad("data_dir", str(cfg.data_dir), "no --data-dir with --dataset digits (scikit-learn ships it); "
                  "--dataset imagefolder reads a folder")
    if cfg.dataset == "cifar10" and cfg.data_dir is None:
        raise bad("data_dir", None, "a folder for cifar10 (local copy, or where to download it)")
    if cfg.dataset == "imagefolder" and cfg.data_dir is None:
        raise bad("data_dir", None, "a folder for imagefolder: DIR/train/<class>/* (optional DIR/val, DIR/test)")
    if cfg.image_size and cfg.dataset != "imagefolder":
        raise bad("image_size", cfg.image_size, f"0 for {cfg.dataset} (resizing is for --dataset imagefolder)")
    try:
        parse_normalize(cfg.normalize)
    except ValueError:
        raise bad("normalize", cfg.normalize, "auto, none, MEAN,STD or M1,M2,M3,S1,S2,S3 (finite, std > 0)") from None


def rewinding_methods(cfg: SearchConfig) -> list[str]:
    """Methods that need the baseline's weights from early in training (lottery)."""
    groups = setting_groups()
    return [m for m in cfg.methods if m in groups and groups[m].baseline_checkpoints(searched_values(cfg, groups[m]))]


def _validate_checkpoints(cfg: SearchConfig) -> None:
    for name in ("checkpoint", "rewind_checkpoint"):
        path = getattr(cfg, name)
        if path is not None and not path.is_file():
            raise bad(name, str(path), "an existing file saved with torch.save")
    if cfg.rewind_checkpoint is not None and cfg.checkpoint is None:
        raise bad("rewind_checkpoint", str(cfg.rewind_checkpoint), "no value without --checkpoint (a trained "
                  "baseline keeps its own rewind points)")
    if cfg.checkpoint is None:
        return
    rewinding = rewinding_methods(cfg)
    if rewinding and cfg.rewind_checkpoint is None:
        raise bad("methods", cfg.methods, f"methods without {', '.join(rewinding)} when --checkpoint has no "
                  "--rewind-checkpoint (it rewinds to early-training weights, which a trained checkpoint lacks)")
    groups = setting_groups()
    for method in rewinding:
        problem = groups[method].check_against_baseline(searched_values(cfg, groups[method]), 0)
        if problem is not None:
            raise bad(problem[0], getattr(cfg, problem[0]), "0 with --checkpoint (the only early weights are "
                      "--rewind-checkpoint's)")


def check_against_data(cfg: SearchConfig, n_train: int, n_val: int, classes: list[str]) -> None:
    """Cross-checks that need the split sizes (known before decoding, see trainables.data.plan_splits)."""
    where = str(cfg.data_dir) if cfg.data_dir is not None else cfg.dataset
    if len(classes) < 2:
        raise bad("data_dir", where, f"at least 2 classes (found {len(classes)}: {', '.join(classes) or 'none'})")
    if n_train < 1 or n_val < 1:
        raise bad("train_subset" if cfg.train_subset else "val_fraction",
                  cfg.train_subset or cfg.val_fraction,
                  f"settings that leave training and validation images (train {n_train}, val {n_val})")
    n_batches = math.ceil(n_train / cfg.batch_size)
    for method in cfg.methods:
        for spec in (s for s in setting_groups()[method].specs() if s.counts_batches):
            lo, hi = getattr(cfg, spec.name)
            if lo > n_batches:
                raise bad(spec.name, lo if lo == hi else (lo, hi),
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
            raise bad(name, getattr(cfg, name), f"{accepted} ({n_train} images / batch {cfg.batch_size} x "
                      f"{cfg.epochs[0]:g} epochs); lower them or raise --baseline-epochs")


def rewind_points(cfg: SearchConfig, n_train: int) -> tuple[int, ...]:
    """Iterations whose weights the baseline keeps (0, plus what the searched methods ask for:
    lottery's rewind points, fractions of the baseline's iterations on `n_train` images)."""
    groups = setting_groups()
    steps = total_steps(n_train, cfg.batch_size, cfg.epochs[0])
    asked = {k for m in cfg.methods for k in groups[m].baseline_checkpoints(searched_values(cfg, groups[m]), steps)}
    return tuple(sorted(asked | {0}))
