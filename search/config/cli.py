"""Where settings come from: the command line (`--flag-name`, generated from SearchConfig's
fields) and TOML files (`--config`, the same names). Precedence: defaults < config file < flags.
`load_config` is the one entry: parse, coerce, fill the defaults a checkpoint implies, validate."""
from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from mlflow_config import stores
from search.config.coercion import ConfigError, coerce_all
from search.config.schema import SearchConfig, searched_values, setting_groups
from search.config.validation import RESUME_BUDGET, rewinding_methods, validate
from search.results.cli_kit import OneLineParser
from trainables.models import resolve_spec


def build_parser(prog: str = "python -m search.run") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Search per-layer pruning ratios and methods for the best accuracy-vs-size Pareto front. "
        "Ray Tune runs the trials, Optuna (multi-objective) steers them, MLflow records everything.",
        epilog=f"Example: {prog} --budget 50 --dataset digits   "
        "Then: prune-search ui (MLflow UI) and prune-search dashboard (optuna-dashboard)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="TOML file with any of the settings below (flags win)")
    for f in fields(SearchConfig):
        default = f.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        if default is None and str(f.type) == "bool | None":
            shown = "auto"
        # Unset (None) is no default to show: the help says what happens without the flag.
        suffix = "" if shown is None else f" (default: {shown})"
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, default=None, metavar=f.name.upper(),
                            help=f"{f.metadata['help']}{suffix}")
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
    """The search's settings from the command line (and --config's TOML file), coerced, given
    their per-model defaults and validated: any problem is one ConfigError."""
    parser = build_parser(prog)
    args = parser.parse_args(_join_negative_values(list(sys.argv[1:] if argv is None else argv)))
    values: dict[str, Any] = {}
    if args.config is not None:
        values.update(_read_toml(args.config))
    values.update({k: v for k, v in vars(args).items() if k != "config" and v is not None})
    coerced = coerce_all(SearchConfig, values)
    if "resume" in values and "budget" not in values:
        coerced["budget"] = RESUME_BUDGET  # the recorded budget; --budget N with --resume extends it
    cfg = _checkpoint_defaults(SearchConfig(**coerced), given=set(values))
    validate(cfg)
    return cfg


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
