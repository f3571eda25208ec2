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
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common  # noqa: E402

RATIOS = (0.3, 0.5, 0.7)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="simplecnn,resnet20", help="models to try (skipped if not in trainables.models)")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--batches", default="1,256")
    ap.add_argument("--repeats", type=int, default=15, help="interleaved rounds (default 15)")
    ap.add_argument("--inner", type=int, default=20, help="forward passes per timing at batch 1 (median of them)")
    ap.add_argument("--align", type=int, default=8, help="also time variants keeping a multiple of this many filters "
                    "per layer (0 = don't)")
    args = ap.parse_args(argv)
    import torch

    from pruners.fpgm import fpgm_prune_
    from pruners.layers import prunable_layers
    from trainables.measure import count_flops, count_params
    from trainables.models import MODELS, build_model

    info = common.machine_info()
    wanted = [m.strip() for m in args.models.split(",") if m.strip()]
    models = [m for m in wanted if m in MODELS]
    skipped = [m for m in wanted if m not in MODELS]
    example = torch.randn(1, 3, 32, 32)
    results, t_start = {}, time.perf_counter()
    for name in models:
        with common.CpuMonitor() as mon:
            torch.manual_seed(0)
            dense = build_model(name, 3, 10, 32).eval()
            variants = {"dense": dense}
            kept = {}
            for r in RATIOS:
                m = copy.deepcopy(dense)
                kept[f"fpgm{int(r * 100)}"] = fpgm_prune_(m, {n: r for n in prunable_layers(m)}, example)
                variants[f"fpgm{int(r * 100)}"] = m.eval()
            if args.align:
                # Same target ratios, but each layer keeps a multiple of `align` filters (rounded up, so
                # never more pruning than asked): do CPU kernels reward aligned channel counts?
                for r in RATIOS:
                    m = copy.deepcopy(dense)
                    layers = prunable_layers(m)
                    ratios = {}
                    for n, layer in layers.items():
                        c = layer.out_channels if hasattr(layer, "out_channels") else layer.out_features
                        keep = min(c, max(args.align, -(-round(c * (1 - r)) // args.align) * args.align))
                        ratios[n] = 1 - keep / c
                    key = f"fpgm{int(r * 100)}-a{args.align}"
                    kept[key] = fpgm_prune_(m, ratios, example)
                    variants[key] = m.eval()
            per_model_kept = {k: {n: len(v) for n, v in kk.items()} for k, kk in kept.items()}
            flops = {k: count_flops(m, example) for k, m in variants.items()}
            params = {k: count_params(m) for k, m in variants.items()}
            per_model = {"flops": flops, "params": params, "latency": {}, "kept_filters": per_model_kept}
            for threads in [int(t) for t in args.threads.split(",")]:
                with common.torch_threads(threads), torch.inference_mode():
                    for bs in [int(b) for b in args.batches.split(",")]:
                        x = torch.randn(bs, 3, 32, 32)
                        inner = args.inner if bs == 1 else 1
                        for m in variants.values():  # warm-up
                            for _ in range(3):
                                m(x)
                        samples = {k: [] for k in variants}
                        cpu = {k: [] for k in variants}
                        keys = list(variants)
                        for rnd in range(args.repeats):
                            for k in keys[rnd % len(keys):] + keys[:rnd % len(keys)]:
                                ts, cs = [], []
                                for _ in range(inner):
                                    t0, c0 = time.perf_counter(), time.process_time()
                                    variants[k](x)
                                    ts.append(time.perf_counter() - t0)
                                    cs.append(time.process_time() - c0)
                                samples[k].append(statistics.median(ts) * 1000)
                                cpu[k].append(statistics.median(cs) * 1000)
                        med = {k: statistics.median(v) for k, v in samples.items()}
                        cmed = {k: statistics.median(v) for k, v in cpu.items()}
                        # Paired: the ratio within each round, then the median over rounds.
                        paired = {k: statistics.median(a / b for a, b in zip(samples[k], samples["dense"])) for k in keys}
                        cpaired = {k: statistics.median(a / b for a, b in zip(cpu[k], cpu["dense"])) for k in keys}
                        per_model["latency"][f"threads{threads}_batch{bs}"] = {
                            "median_ms": med, "ratio_vs_dense": paired, "cpu_median_ms": cmed,
                            "cpu_ratio_vs_dense": cpaired, "samples_ms": samples, "cpu_samples_ms": cpu}
                        print(f"{name} threads={threads} batch={bs}: " + ", ".join(
                            f"{k} {med[k]:.3f}ms ({paired[k]:.2f}x, cpu {cpaired[k]:.2f}x)" for k in keys), flush=True)
        per_model["load_avg_after"] = [round(x, 2) for x in __import__("os").getloadavg()]
        per_model["other_tenants_cores"] = mon.result["others_cores"]
        results[name] = per_model
    total_s = time.perf_counter() - t_start
    cmd = common.command("speedup.py", argv)
    payload = {"benchmark": "speedup", "command": cmd, "machine": info, "input": [3, 32, 32], "ratios": RATIOS,
               "models": models, "skipped_models": skipped, "repeats": args.repeats, "inner_batch1": args.inner,
               "results": results, "total_s": total_s}
    path = common.write_json("speedup", payload)
    common.update_section("speedup", _markdown(payload))
    print(f"wrote {path}")
    return 0


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
        f"with more than 1 thread it sums the threads).{' Not available: ' + ', '.join(p['skipped_models']) + '.' if p['skipped_models'] else ''}  ",
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


if __name__ == "__main__":
    sys.exit(main())
