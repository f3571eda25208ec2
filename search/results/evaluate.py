"""`prune-search evaluate --run-id RUN`: rebuild a trial's model from MLflow and re-evaluate it.

On the trial's own splits the logged val_acc and test_acc must come back exactly (exit 1 if
not: the stored model is not the measured one). With --test-dir it also reports accuracy on
another image-folder test set with the same classes.
"""
from __future__ import annotations

import sys
from pathlib import Path

from search.results.cli_kit import OneLineParser, UsageError, add_data_args, add_store_args, fail, open_store, quiet_progress_bars
from search.results.reproduce import Trial, load_image_folder, load_trial, trial_threads
from trainables.data import Split
from trainables.measure import TEST_ACC, VAL_ACC
from trainables.progress import Ticker


def build_parser(prog: str = "prune-search evaluate") -> OneLineParser:
    parser = OneLineParser(
        prog=prog,
        description="Rebuild a trial's pruned model from what MLflow stored (config, compressed weights, kept "
        "channels) and re-evaluate it. On the trial's own validation/test splits the logged val_acc and "
        "test_acc must be reproduced exactly (exit 1 otherwise); --test-dir adds another test set.",
        epilog="Example: prune-search evaluate --run-id 573e58a7... --test-dir my-digits/  "
        "(find trial ids in the MLflow UI with: tags.pareto = 'true')")
    parser.add_argument("--run-id", required=True, help="MLflow run id of a trial (a child run of a search)")
    parser.add_argument("--test-dir", type=Path, default=None,
                        help="extra test set: image-folder tree <class>/*.jpg|png, classes named like the trial's")
    add_data_args(parser)
    add_store_args(parser)
    return parser


def evaluate_trial(trial: Trial, test_split: Split | None = None) -> dict[str, float]:
    """Accuracies of the rebuilt model: val_acc, test_acc and, with test_split, test_dir_acc."""
    from trainables.loops import evaluate

    splits = {VAL_ACC: trial.data.val, TEST_ACC: trial.data.test, "test_dir_acc": test_split}
    out = {}
    with trial_threads(trial.parent):
        for key, split in splits.items():
            if split is not None:
                ticker = Ticker(f"evaluating {key.removesuffix('_acc')}", len(split))
                out[key] = evaluate(trial.model, split, trial.norm, on_batch=ticker.update)
    return out


def main(argv: list[str] | None = None, prog: str = "prune-search evaluate") -> int:
    quiet_progress_bars()
    try:
        args = build_parser(prog).parse_args(argv)
        client, uri = open_store(args.tracking_uri, args.home)
        trial = load_trial(client, args.run_id, uri, home=args.home, dataset=args.dataset, data_dir=args.data_dir)
        # A bad folder is one line before any result; decoded once.
        test_split = None if args.test_dir is None else load_image_folder(args.test_dir, trial.data)
        acc = evaluate_trial(trial, test_split)
    except UsageError as exc:
        return fail(exc)
    logged = trial.run.data.metrics
    tags = trial.run.data.tags
    print(f"trial {args.run_id} ({tags.get('method')}, search {tags.get('search')}, pareto={tags.get('pareto')}): "
          f"{sum(p.numel() for p in trial.model.parameters()):,} params")
    print(f"stored model: {trial.artifact_bytes:,} bytes on disk, {trial.encoded_bytes:,} bytes of tensors "
          f"(logged size_bytes {logged.get('size_bytes', float('nan')):,.0f}; the rest is torch.save overhead)")
    exact = True
    for key in (VAL_ACC, TEST_ACC):
        same = acc[key] == logged.get(key)
        exact &= same
        print(f"{key}: logged {logged.get(key)!r} reproduced {acc[key]!r} {'exact' if same else 'MISMATCH'}")
    if args.test_dir is not None:
        print(f"test_dir_acc: {acc['test_dir_acc']!r} on {args.test_dir}")
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
