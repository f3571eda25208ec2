"""The dense baseline a search starts from: val/test accuracy and training time of the default
recipe (`python -m search.run --dataset cifar10` with no recipe flags: 45k/5k/5k split, 15 epochs,
one-cycle LR, random crop + flip), trained by the product's own code and cached where a search
finds it. `--arms default,plain` also trains the old recipe (no augmentation, cosine), side by side.
A rerun on the same commit skips the arms already in its JSON (the training is the long part).

    python bench/baseline_recipe.py                          # CIFAR-10 default recipe (~15-25 min on 2 cores)
    python bench/baseline_recipe.py --arms default,plain     # and the recipe it replaced
    python bench/baseline_recipe.py --model resnet20 --baseline-epochs 50 --baseline-lr 0.2 \
        --save-checkpoint bench/checkpoints/resnet20_cifar10.pt  # the deep benchmarks' committed baseline

The saved checkpoint is the baseline's state_dict (loadable with weights_only=True), and beside it
<name>_init.pt, the weights at initialization (lottery's --rewind-checkpoint); their sha256 go
into the JSON, so a benchmark reading them can check they are the measured files.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, markdown  # noqa: E402

ARMS = {"default": [], "plain": ["--augment", "false", "--baseline-schedule", "cosine"]}


def main(argv=None) -> int:
    ap = common.BenchParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=("digits", "cifar10"), default="cifar10")
    ap.add_argument("--arms", default="default", help=f"comma-separated: {', '.join(ARMS)} (default: default)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--model", default=None, help="built-in model name (default: the dataset's default)")
    ap.add_argument("--baseline-epochs", type=float, default=None,
                    help="training epochs (default: the dataset's default recipe)")
    ap.add_argument("--baseline-lr", type=float, default=None,
                    help="peak learning rate (default: the product's --baseline-lr default)")
    ap.add_argument("--save-checkpoint", type=Path, default=None,
                    help="write the trained baseline's state_dict here (torch.save; sha256 recorded)")
    ap.add_argument("--home", type=Path, default=common.DEFAULT_HOME)
    args = ap.parse_args(argv)
    unknown = [a for a in args.arms.split(",") if a not in ARMS]
    if unknown:
        ap.error(f"--arms: {','.join(unknown)!r} is not accepted; expected a comma-separated subset of "
                 f"{', '.join(ARMS)}")
    name = f"baseline_recipe_{args.dataset}" + (f"_{args.model}" if args.model else "")
    previous = _previous(name)
    results = dict(previous.get("arms", {}))
    for arm in args.arms.split(","):
        if arm in results:
            print(f"{arm}: already measured at {previous['machine']['commit']}, skipped")
            continue
        results[arm] = _train(args, arm)
        payload = {"benchmark": "baseline_recipe", "command": common.command("baseline_recipe.py", argv),
                   "machine": common.machine_info(), "dataset": args.dataset, "threads": args.threads,
                   "arms": results}
        common.write_json(name, payload)  # after every arm: an interrupted run keeps what it finished
    markdown.update_section(name, markdown_section(_previous(name), name))
    print(json.dumps(results, indent=1))
    return 0


def _previous(name: str) -> dict:
    """The JSON of an earlier run on this very commit, else nothing (other code, other figures)."""
    path = common.RESULTS / f"{name}.json"
    if not path.exists():
        return {}
    p = json.loads(path.read_text())
    return p if p.get("machine", {}).get("commit") == common.git_commit() else {}


def _train(args, arm: str) -> dict:
    from search.config import load_config
    from search.results.cli_kit import printed_logs
    from search.run import _prepare

    flags = ["--dataset", args.dataset, "--home", str(args.home.resolve()), *ARMS[arm]]
    if args.model:
        flags += ["--model", args.model]
    if args.baseline_epochs:
        flags += ["--baseline-epochs", str(args.baseline_epochs)]
    if args.baseline_lr:
        flags += ["--baseline-lr", str(args.baseline_lr)]
    if args.dataset == "cifar10":
        flags += ["--data-dir", str(common.CIFAR_DIR)]
    cfg = load_config(flags)
    t0 = time.perf_counter()
    with common.torch_threads(args.threads), printed_logs():
        data, baseline = _prepare(cfg, args.home.resolve())
    saved = {}
    if args.save_checkpoint is not None:
        import torch

        from trainables.checkpoint import file_sha256

        args.save_checkpoint.parent.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu().contiguous() for k, v in baseline.state.items()}, args.save_checkpoint)
        saved = {"checkpoint": str(args.save_checkpoint), "checkpoint_sha256": file_sha256(args.save_checkpoint)}
        if 0 in baseline.rewind_states:  # the weights at initialization: lottery's --rewind-checkpoint
            init = args.save_checkpoint.with_name(args.save_checkpoint.stem + "_init.pt")
            torch.save({k: v.detach().cpu().contiguous() for k, v in baseline.rewind_states[0].items()}, init)
            saved |= {"rewind_checkpoint": str(init), "rewind_checkpoint_sha256": file_sha256(init)}
    return {**saved, "flags": flags[4:], "model": cfg.model, "val_acc": baseline.metrics["val_acc"],
            "test_acc": baseline.metrics["test_acc"], "train_s": baseline.metrics["train_s"],
            "cached": baseline.cached, "wall_s": time.perf_counter() - t0, "baseline_key": baseline.key,
            "epochs": cfg.epochs[0], "lr": cfg.baseline_lr, "schedule": cfg.schedule, "augment": cfg.augment_on,
            "split": {"train": len(data.train), "val": len(data.val), "test": len(data.test)}}


def markdown_section(p: dict, name: str) -> str:
    models = sorted({r.get("model", "default") for r in p["arms"].values()})
    lines = [f"## Dense baseline recipe: {p['dataset']}" + (f" ({', '.join(models)})" if models != ["default"] else ""),
             "",
             f"Command: `{p['command']}`  ", f"{common.machine_line(p['machine'])} {p['threads']} torch threads.", "",
             "Accuracy is the figure; the training time is wall time on a shared machine (see its load).", "",
             "| arm | recipe | split (train/val/test) | val acc | test acc | training time |", "|---|---|---|---|---|---|"]
    for arm, r in p["arms"].items():
        split = r["split"]
        lines.append(f"| {arm} | {r['epochs']:g} epochs, {r['schedule']}"
                     + (f" (peak lr {r['lr']:g})" if "lr" in r else "") + ", augmentation "
                     f"{'on' if r['augment'] else 'off'} | {split['train']}/{split['val']}/{split['test']} | "
                     f"{r['val_acc']:.4f} | {r['test_acc']:.4f} | {r['train_s']:.0f}s"
                     f"{' (cached: an earlier run)' if r['cached'] else ''} |")
    for arm, r in p["arms"].items():
        if r.get("checkpoint"):
            lines += ["", f"{arm}: weights saved as `{r['checkpoint']}` (state_dict, `torch.load(weights_only=True)`), "
                          f"sha256 `{r['checkpoint_sha256']}`; a benchmark passes it with `--checkpoint` and checks the hash."]
    return "\n".join(lines)


def summary_row(p: dict) -> tuple[str, str]:
    parts = [f"{arm}: val {r['val_acc']:.4f}, test {r['test_acc']:.4f}" for arm, r in p["arms"].items()]
    return "; ".join(parts), "(report)"


if __name__ == "__main__":
    sys.exit(main())
