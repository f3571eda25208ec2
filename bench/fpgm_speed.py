"""FPGM's criterion on large layers: the summed distance of each filter to the others, computed
the old way (pairwise differences, `cdist` without the matrix product, float64) and the product's
way (one float64 matrix product, pruners.importance.fpgm_scores), on one thread as a Ray trial runs.
Layers: VGG-11's first FC layer (4096 x 25088, where the old way took minutes per prune) and
every filter layer of torchvision's ResNet-18, summed. Also checks the two agree (the largest
relative difference of the scores, and whether they drop the same filters at 50%).

    python bench/fpgm_speed.py                 # both layers sets, old and new (~10 min on 1 core)
    python bench/fpgm_speed.py --skip-old-vgg  # the new way only on VGG (the old one is the slow part)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, markdown  # noqa: E402

NAME = "fpgm_speed"


def old_scores(weight):
    import torch

    flat = weight.detach().flatten(1).double()
    return torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist").sum(dim=1)


def _time(fn, weights) -> tuple[float, list]:
    t0 = time.perf_counter()
    scores = [fn(w) for w in weights]
    return time.perf_counter() - t0, scores


def _layers(name: str):
    import torch
    import torchvision

    torch.manual_seed(0)
    if name == "vgg11_fc":
        return [torchvision.models.vgg11_bn(num_classes=10).classifier[0].weight]
    model = torchvision.models.resnet18(num_classes=10)
    return [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)]


def _agree(old, new) -> dict:
    import torch

    rel = max(float(((n - o).abs() / o.abs().clamp_min(1e-300)).max()) for o, n in zip(old, new))
    same = all(torch.equal(torch.argsort(o, stable=True)[: len(o) // 2].sort().values,
                           torch.argsort(n, stable=True)[: len(n) // 2].sort().values) for o, n in zip(old, new))
    return {"max_rel_diff": rel, "same_50pct_drop": same}


def main(argv=None) -> int:
    ap = common.BenchParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-old-vgg", action="store_true", help="do not time the old criterion on VGG's FC layer")
    args = ap.parse_args(argv)
    from pruners.importance import fpgm_scores

    rows = {}
    with common.torch_threads(1):
        for name in ("resnet18_convs", "vgg11_fc"):
            weights = _layers(name)
            new_s, new = _time(fpgm_scores, weights)
            row = {"layers": len(weights), "shape": list(weights[0].shape) if len(weights) == 1 else "20 convs",
                   "new_s": new_s}
            if not (name == "vgg11_fc" and args.skip_old_vgg):
                old_s, old = _time(old_scores, weights)
                row.update({"old_s": old_s, "speedup": old_s / new_s, **_agree(old, new)})
            rows[name] = row
            print(name, row, flush=True)
    payload = {"benchmark": NAME, "command": common.command("fpgm_speed.py", argv), "machine": common.machine_info(),
               "threads": 1, "rows": rows}
    common.write_json(NAME, payload)
    markdown.update_section(NAME, markdown_section(payload))
    return 0


def markdown_section(p: dict, name: str = NAME) -> str:
    lines = ["## FPGM criterion on large layers", "", f"Command: `{p['command']}`  ",
             f"{common.machine_line(p['machine'])} 1 torch thread.", "",
             "Old: pairwise differences (`cdist` without the matrix product, float64). New: "
             "`pruners.importance.fpgm_scores`, one float64 matrix product. Same filters dropped at 50% in both.", "",
             "| layers | old | new | speedup | max relative score difference | same 50% drop |",
             "|---|---|---|---|---|---|"]
    for name, r in p["rows"].items():
        if "old_s" in r:
            cells = (f"{r['old_s']:.1f} s", f"{r['speedup']:.0f}x", f"{r['max_rel_diff']:.1e}",
                     "yes" if r["same_50pct_drop"] else "no")
        else:
            cells = ("not run", "-", "-", "-")
        lines.append(f"| {name} ({r['shape']}) | {cells[0]} | {r['new_s']:.2f} s | {' | '.join(cells[1:])} |")
    return "\n".join(lines)


def summary_row(p: dict) -> tuple[str, str]:
    parts = [f"{n}: {r['new_s']:.1f} s" + (f" (was {r['old_s']:.0f} s)" if "old_s" in r else "")
             for n, r in p["rows"].items()]
    return "; ".join(parts), "(report)"


if __name__ == "__main__":
    sys.exit(main())
