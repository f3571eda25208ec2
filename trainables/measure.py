"""What a trial reports besides accuracy: parameters, nonzeros, FLOPs, latency."""
from __future__ import annotations

import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

# Metric names: the keys of a trial's metrics, Ray Tune's results and MLflow's metrics.
VAL_ACC = "val_acc"  # drives the search
TEST_ACC = "test_acc"  # reported only
PRUNE_VAL_ACC = "prune_val_acc"  # val accuracy right after pruning, before fine-tuning (BN recalibrated)
# The second objective a search minimizes (--objective) -> the metric it reads.
OBJECTIVE_METRIC = {"size": "size_bytes", "nonzero": "nonzero_params", "flops": "flops", "latency": "latency_ms"}
OBJECTIVES = tuple(OBJECTIVE_METRIC)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_nonzero(model: nn.Module) -> int:
    return sum(int((p != 0).sum()) for p in model.parameters())


@torch.inference_mode()
def count_flops(model: nn.Module, example: torch.Tensor) -> int:
    """FLOPs (2 x MACs) of one forward pass at batch 1 of the model as it is: a physically
    smaller model counts less, masks do not (dense kernels still multiply the zeros)."""
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter:
        model(example[:1])
    return int(counter.get_total_flops())


@torch.inference_mode()
def latency_ms(model: nn.Module, example: torch.Tensor, batch_size: int = 1, repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time of one forward pass at `batch_size`, on the example's device."""
    model.eval()
    x = example[:1].expand(batch_size, *example.shape[1:]).contiguous()
    for _ in range(warmup):
        model(x)
    times = []
    for _ in range(repeats):
        if x.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(x)
        if x.is_cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
