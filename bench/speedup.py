"""Does FPGM's physical filter removal buy real CPU time? FPGM (pruners.fpgm.fpgm_prune_) at
30/50/70% of the filters of every filter layer (convs and hidden FC; the classifier's outputs
are the classes and stay), on CIFAR-size input (3x32x32, 10 classes): CPU latency of one
forward pass relative to the dense model at batch 1 and 256, beside the FLOPs and parameter
ratios. Latency is the median over --repeats rounds in which the dense and pruned models run
interleaved, in a rotating order (side by side in time on a noisy machine). Models: SimpleCNN,
and ResNet-20 when trainables.models has it. Weights are the (seeded) initialization: latency
does not depend on the values, and FPGM's choice of filters does not change the shapes.

    python bench/speedup.py                         # 1 torch thread (what a 1-CPU trial gets), ~3 min
    python bench/speedup.py --threads 1,2 --repeats 30   # full setting (~8 min)
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common, cpu, markdown  # noqa: E402

RATIOS = (0.3, 0.5, 0.7)


def main(argv=None) -> int:
    ap = common.BenchParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="simplecnn,resnet20", help="models to try (skipped if not in trainables.models)")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--batches", default="1,256")
    ap.add_argument("--repeats", type=int, default=15, help="interleaved rounds (default 15)")
    ap.add_argument("--inner", type=int, default=20, help="forward passes per timing at batch 1 (median of them)")
    ap.add_argument("--align", type=int, default=8, help="also time variants keeping a multiple of this many filters "
                    "per layer (0 = don't)")
    args = ap.parse_args(argv)
    from trainables.models import MODELS

    info = common.machine_info()
    wanted = [m.strip() for m in args.models.split(",") if m.strip()]
    models = [m for m in wanted if m in MODELS]
    skipped = [m for m in wanted if m not in MODELS]
    results, t_start = {}, time.perf_counter()
    for name in models:
        with cpu.CpuMonitor() as mon:
            results[name] = _measure_model(name, args)
        results[name]["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
        results[name]["other_tenants_cores"] = mon.result["others_cores"]
    total_s = time.perf_counter() - t_start
    payload = {"benchmark": "speedup", "command": common.command("speedup.py", argv), "machine": info,
               "input": [3, 32, 32], "ratios": RATIOS, "models": models, "skipped_models": skipped,
               "repeats": args.repeats, "inner_batch1": args.inner, "results": results, "total_s": total_s}
    path = common.write_json("speedup", payload)
    markdown.update_section("speedup", _markdown(payload))
    print(f"wrote {path}")
    return 0


def _variants(name: str, align: int, example) -> tuple[dict, dict]:
    """The dense model and its FPGM-pruned copies at each ratio (and, with `align`, copies that
    keep a multiple of `align` filters per layer). Returns (variants, kept filter counts)."""
    import torch

    from pruners.fpgm import fpgm_prune_
    from pruners.layers import prunable_layers
    from trainables.models import build_model

    torch.manual_seed(0)
    dense = build_model(name, 3, 10, 32).eval()
    variants, kept = {"dense": dense}, {}

    def add(key: str, ratios_of) -> None:
        m = copy.deepcopy(dense)
        kept[key] = fpgm_prune_(m, ratios_of(prunable_layers(m)), example)
        variants[key] = m.eval()

    for r in RATIOS:
        add(f"fpgm{int(r * 100)}", lambda layers, r=r: {n: r for n in layers})
    if align:
        # Same target ratios, but each layer keeps a multiple of `align` filters (rounded up, so
        # never more pruning than asked): do CPU kernels reward aligned channel counts?
        def aligned(layers, r):
            out = {}
            for n, layer in layers.items():
                c = layer.out_channels if hasattr(layer, "out_channels") else layer.out_features
                keep = min(c, max(align, -(-round(c * (1 - r)) // align) * align))
                out[n] = 1 - keep / c
            return out

        for r in RATIOS:
            add(f"fpgm{int(r * 100)}-a{align}", lambda layers, r=r: aligned(layers, r))
    return variants, {k: {n: len(v) for n, v in kk.items()} for k, kk in kept.items()}


def _measure_model(name: str, args) -> dict:
    import torch

    from trainables.measure import count_flops, count_params

    example = torch.randn(1, 3, 32, 32)
    variants, kept = _variants(name, args.align, example)
    per_model = {"flops": {k: count_flops(m, example) for k, m in variants.items()},
                 "params": {k: count_params(m) for k, m in variants.items()}, "latency": {}, "kept_filters": kept}
    for threads in [int(t) for t in args.threads.split(",")]:
        for bs in [int(b) for b in args.batches.split(",")]:
            lat = _time_variants(variants, bs, threads, args.repeats, args.inner if bs == 1 else 1)
            per_model["latency"][f"threads{threads}_batch{bs}"] = lat
            print(f"{name} threads={threads} batch={bs}: " + ", ".join(
                f"{k} {lat['median_ms'][k]:.3f}ms ({lat['ratio_vs_dense'][k]:.2f}x, "
                f"cpu {lat['cpu_ratio_vs_dense'][k]:.2f}x)" for k in variants), flush=True)
    return per_model


def _time_variants(variants: dict, bs: int, threads: int, repeats: int, inner: int) -> dict:
    """Latency of every variant at one batch size, interleaved in a rotating order per round;
    ratios to dense are paired within each round, then the median over rounds."""
    import torch

    x = torch.randn(bs, 3, 32, 32)
    keys = list(variants)
    with common.torch_threads(threads), torch.inference_mode():
        for m in variants.values():  # warm-up
            for _ in range(3):
                m(x)
        samples = {k: [] for k in keys}
        cpu_ms = {k: [] for k in keys}
        for rnd in range(repeats):
            for k in keys[rnd % len(keys):] + keys[:rnd % len(keys)]:
                ts, cs = [], []
                for _ in range(inner):
                    t0, c0 = time.perf_counter(), time.process_time()
                    variants[k](x)
                    ts.append(time.perf_counter() - t0)
                    cs.append(time.process_time() - c0)
                samples[k].append(statistics.median(ts) * 1000)
                cpu_ms[k].append(statistics.median(cs) * 1000)
    return {"median_ms": {k: statistics.median(v) for k, v in samples.items()},
            "ratio_vs_dense": {k: statistics.median(a / b for a, b in zip(samples[k], samples["dense"])) for k in keys},
            "cpu_median_ms": {k: statistics.median(v) for k, v in cpu_ms.items()},
            "cpu_ratio_vs_dense": {k: statistics.median(a / b for a, b in zip(cpu_ms[k], cpu_ms["dense"]))
                                   for k in keys},
            "samples_ms": samples, "cpu_samples_ms": cpu_ms}


def _markdown(p) -> str:
    lines = [
        "## FPGM speed-up on CPU (latency vs FLOPs)",
        "",
        f"Command: `{p['command']}`  ",
        f"Input 3x32x32, 10 classes; FPGM removes 30/50/70% of the filters of every conv and hidden FC layer "
        f"(physically: smaller dense layers). Latency: median over {p['repeats']} interleaved rounds "
        f"(batch 1: median of {p['inner_batch1']} passes per round); ratio = median of per-round ratios to "
        f"dense (< 1 is faster). `-a8` variants: same target ratio, each layer keeping a multiple of 8 "
        f"filters (rounded up). In parentheses the same from process CPU time (robust to other tenants' load; "
        "with more than 1 thread it sums the threads)."
        + (f" Not available: {', '.join(p['skipped_models'])}." if p["skipped_models"] else "") + "  ",
        common.machine_line(p["machine"]) + " Load average after each model: "
        + "; ".join(f"{m}: {', '.join(map(str, r['load_avg_after']))} (other tenants used "
                    f"{r['other_tenants_cores']:.2f} of 2 cores meanwhile)" for m, r in p["results"].items()) + ".",
        "",
    ]
    for name, r in p["results"].items():
        settings = list(r["latency"])
        head = " | ".join(f"latency ratio {s.replace('threads', '').replace('_batch', ' thr, batch ')}" for s in settings)
        lines += [f"**{name}** (dense: {r['params']['dense']:,} params, {r['flops']['dense'] / 1e6:.1f} MFLOPs; "
                  + ", ".join(f"{s.replace('threads', '').replace('_batch', ' thr batch ')}: "
                              f"{r['latency'][s]['median_ms']['dense']:.3f} ms" for s in settings) + ")",
                  "",
                  f"| variant | filters kept | params ratio | FLOPs ratio | {head} |",
                  "|---|---|---|---|" + "---|" * len(settings)]
        for k in r["flops"]:
            if k == "dense":
                continue
            cells = " | ".join(f"{r['latency'][s]['ratio_vs_dense'][k]:.3f} ({r['latency'][s]['cpu_ratio_vs_dense'][k]:.3f})"
                               for s in settings)
            kf = "/".join(str(v) for v in dict.fromkeys(r["kept_filters"][k].values()))  # distinct, in model order
            lines.append(f"| {k} | {kf} | {r['params'][k] / r['params']['dense']:.3f} | "
                         f"{r['flops'][k] / r['flops']['dense']:.3f} | {cells} |")
        lines.append("")
    return "\n".join(lines)


def markdown_section(p: dict, name: str) -> str:
    """This benchmark's BENCHMARKS.md section, from its JSON (bench/render.py)."""
    return _markdown(p)


def summary_row(p: dict) -> tuple[str, str]:
    """(headline figure, goal status) for the summary table."""
    parts = []
    for m, r in p["results"].items():
        cells = ", ".join(f"{k.split('_')[1].replace('batch', 'batch ')}: {v['ratio_vs_dense']['fpgm50']:.2f}"
                          for k, v in r["latency"].items() if k.startswith("threads1_"))
        parts.append(f"{m} FPGM 50%: FLOPs {r['flops']['fpgm50'] / r['flops']['dense']:.2f}, latency {cells}")
    return "; ".join(parts), "(report)"


if __name__ == "__main__":
    sys.exit(main())
