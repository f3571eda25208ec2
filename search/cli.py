"""`prune-search`: one command line with a subcommand per job, the convention of mlflow, optuna
and ray. Each subcommand is the module's own parser and main (so `python -m search.run` and
`python -m search.results.export` keep working); this file only dispatches, and imports a tool
only when it is asked for (`prune-search --help` must not pay for torch, Ray or MLflow)."""
from __future__ import annotations

import importlib
import sys

PROG = "prune-search"
# subcommand -> (module with main(argv, prog), one line for `prune-search --help`)
COMMANDS = {
    "run": ("search.run", "run (or resume) a search: Ray Tune trials, Optuna steering, MLflow records"),
    "evaluate": ("search.results.evaluate",
                 "rebuild a trial from MLflow and check its logged val/test accuracy (or test on another folder)"),
    "export": ("search.results.export",
               "write a trial's pruned model (state_dict, TorchScript, ONNX), verified; optionally register it"),
    "compare": ("search.results.compare",
                "overlay the fronts and hypervolumes of several searches in one MLflow run"),
    "ui": ("search.results.ui", "serve the MLflow UI on the search's store (127.0.0.1)"),
    "dashboard": ("search.results.dashboard", "serve optuna-dashboard on the search's study (127.0.0.1)"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {line}" for name, (_, line) in COMMANDS.items())
    return (f"usage: {PROG} <command> [options]   ({PROG} <command> --help for its options)\n\n"
            f"commands:\n{rows}\n\nExample: {PROG} run --budget 50 --dataset digits, then {PROG} ui")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"error: command {command!r} is not accepted; expected one of {', '.join(COMMANDS)} "
              f"(see {PROG} --help)", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return module.main(rest, prog=f"{PROG} {command}")


if __name__ == "__main__":
    sys.exit(main())
