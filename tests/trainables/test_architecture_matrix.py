"""Any model, really: every architecture of tests/architectures.py through the real trial path
(pruners -> fine-tune -> int8 off -> encode -> measure) with each structured method and
magnitude. For each: no exception; the pruned model, rebuilt from the baseline and the recorded
kept channels, loads the recorded weights exactly and gives outputs of the right shape; it is
smaller unless the dependency graph reported every filter layer dense; and what is recorded
(removed_filters, kept channels) is what was pruned. torchvision's larger models are `slow`."""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import pytest
import torch

from pruners.base import load_weights
from pruners.graph import filter_layers, layer_plan
from pruners.layers import prunable_layers
from pruners.surgery import rebuild
from tests import architectures
from trainables import compress
from trainables.baseline import Baseline, BaselineSpec, normalizer
from trainables.data import DatasetBundle, Split
from trainables.trial import run_trial
from trainables.trial_config import TrialConfig

SPEC_FILE = Path(architectures.__file__).resolve()
FAST = tuple(architectures.CUSTOM) + ("resnet18", "mobilenet_v3_small", "shufflenet_v2_x0_5", "squeezenet1_0",
                                      "mnasnet0_5")
SLOW = tuple(n for n in architectures.TORCHVISION if n not in FAST)
METHODS = {
    "fpgm": {},
    "taylor": {"taylor_granularity": "filter", "taylor_batches": 2},
    "hybrid": {"hybrid_filter_ratio": 0.25},
    "magnitude": {"magnitude_scope": "layer"},
}
RATIO = 0.5
CONSTANTS = {"finetune_epochs": 1, "batch_size": 8, "seed": 0, "augment": False, "latency_batch": 1,
             "finetune_lr": 0.01}


@lru_cache(maxsize=1)
def data() -> DatasetBundle:
    g = torch.Generator().manual_seed(0)

    def split(n):
        return Split(torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
                     torch.randint(0, 10, (n,), generator=g))

    return DatasetBundle("random", split(16), split(8), split(8), [str(i) for i in range(10)],
                         (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "random-3x32x32")


@lru_cache(maxsize=1)
def baseline(arch: str) -> tuple[str, Baseline]:
    spec = f"{SPEC_FILE}:{arch}"
    torch.manual_seed(0)
    dense = architectures.build(arch).eval()
    recipe = BaselineSpec(spec, epochs=1, lr=0.01, batch_size=8, seed=0, augment=False, rewind_iters=())
    state = {k: v.detach().clone() for k, v in dense.state_dict().items()}
    return spec, Baseline("matrix", state, {}, {}, spec=recipe)


def run_and_check(arch: str, method: str) -> tuple[float, int]:
    """Runs the trial and checks the record against the model (see the module docstring);
    returns the pruned model's parameter count and the dense one's."""
    spec, base = baseline(arch)
    dense = base.build(spec, data()).eval()
    example = normalizer(data(), False)(data().val.x[:1])
    layers = prunable_layers(dense)
    plan = layer_plan(dense, example)
    filters = set(filter_layers(dense, layers, example))
    ratios = {n: RATIO for n in layers if method == "magnitude" or n in filters}
    config = {**CONSTANTS, "model": spec, "method": method, **METHODS[method],
              **{f"sparsity.{n}": r for n, r in ratios.items()}}
    out = run_trial(TrialConfig.from_flat(config), data(), base)

    # The recorded model: the baseline rebuilt from the kept channels, then the stored weights.
    model = rebuild(dense, out.kept_channels, example) if out.kept_channels else copy.deepcopy(dense)
    load_weights(model, compress.decode(out.encoded))  # strict: every shape matches the record
    with torch.no_grad():
        assert model.eval()(normalizer(data(), False)(data().test.x)).shape == (8, 10)
    n_dense = sum(p.numel() for p in dense.parameters())
    if method == "magnitude":
        assert out.metrics["nonzero_params"] < n_dense
        return out.metrics["params"], n_dense
    assert not set(out.kept_channels) & (set(plan.dense) | set(plan.classifiers)), "left-dense layer pruned"
    if filters:
        assert out.metrics["params"] < n_dense, f"{arch}: {method} left the model whole: {out.notes}"
        assert out.kept_channels
    else:
        assert out.metrics["params"] == n_dense and out.notes, "nothing to prune: a no-op with a note"
    for name, module in layers.items():  # the record is what was pruned
        kept = out.kept_channels.get(name)
        expected = 0.0 if kept is None else 1.0 - len(kept) / module.weight.shape[0]
        assert out.removed_filters[name] == pytest.approx(expected), name
        assert dict(model.named_modules())[name].weight.shape[0] == (module.weight.shape[0] if kept is None
                                                                       else len(kept))
    return out.metrics["params"], n_dense


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("arch", FAST)
def test_architecture(arch, method):
    params, dense = run_and_check(arch, method)
    assert params <= dense  # never larger than dense, whatever the architecture


@pytest.mark.slow
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("arch", SLOW)
def test_large_torchvision_architecture(arch, method):
    params, dense = run_and_check(arch, method)
    assert params <= dense  # never larger than dense, whatever the architecture
