"""The compact "family" space (`--space family`): two numbers instead of one ratio per layer.

- `family_target`: the fraction of the method's prunable weights to remove, overall;
- `family_shape` (beta): how the removal is spread. A layer's density (fraction kept) is
  c * erk^beta, where erk = sum(shape) / prod(shape) is its Erdos-Renyi-Kernel factor (Evci et
  al. 2020: (n_in + n_out) / (n_in * n_out) for a linear layer, the kernel-size form for a conv),
  clipped into the layer's own depth-aware bounds; c is solved so the kept weights add up to the
  target. beta = 0 is uniform, beta = 1 is ERK (large layers pruned harder), beta > 1 more so.

A filter method reads each ratio as its fraction of filters (the same allocation, applied to
output channels). The ratios reach the trial as `sparsity.<layer>` constants, like the schedule
space's, so trials, MLflow and `search.results.reproduce` see per-layer ratios either way.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

# The family space's own settings (SearchConfig fields with search=True), sampled as floats.
FAMILY_SETTINGS = ("family_target", "family_shape")


def erk_factor(shape: Sequence[int]) -> float:
    return sum(shape) / math.prod(shape)


def family_ratios(shapes: Mapping[str, Sequence[int]], bounds: Mapping[str, tuple[float, float]],
                  target: float, beta: float) -> dict[str, float]:
    """Per-layer ratios (fraction removed) whose weight-weighted mean is `target` when the
    bounds allow it (else as near as they allow), each inside its layer's (lo, hi)."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    raw = {n: erk_factor(s) ** beta for n, s in shapes.items()}
    # A layer's density lies in [1 - hi, 1 - lo]; the kept total is non-decreasing in c.
    d_lo = {n: 1.0 - bounds[n][1] for n in shapes}
    d_hi = {n: 1.0 - bounds[n][0] for n in shapes}
    want = (1.0 - target) * sum(sizes.values())

    def density(c: float) -> dict[str, float]:
        return {n: min(max(c * raw[n], d_lo[n]), d_hi[n]) for n in shapes}

    def kept(c: float) -> float:
        return sum(d * sizes[n] for n, d in density(c).items())

    lo, hi = -60.0, 60.0  # log c: wide enough for any layer size and beta up to ~3
    for _ in range(200):  # bisection on log c; converges far below one weight
        mid = (lo + hi) / 2
        if kept(math.exp(mid)) < want:
            lo = mid
        else:
            hi = mid
    # Clamped once more: 1 - (1 - hi) is not always hi in floating point.
    return {n: min(max(1.0 - d, bounds[n][0]), bounds[n][1]) for n, d in density(math.exp(hi)).items()}
