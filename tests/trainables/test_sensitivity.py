"""The per-layer sensitivity scan: each point is the accuracy of that layer alone pruned (BN
recalibrated, no fine-tune); the baseline is never changed; the scan is reused from its cache;
its caps lower the search's per-layer upper bounds."""
from __future__ import annotations

import copy

import pytest
import torch

from pruners.allocation import keep_mask
from pruners.layers import prunable_layers
from pruners.masking import apply_masks
from search.config import load_config
from search.space import layer_bounds
from tests.trainables.helpers import small_digits
from trainables import sensitivity
from trainables.baseline import BaselineSpec, get_baseline, normalizer
from trainables.data import Split
from trainables.loops import evaluate, recalibrate_bn
from trainables.sensitivity import Sensitivity, get_sensitivity, scan

SPEC = BaselineSpec("simplecnn", epochs=2, lr=0.05, batch_size=64, seed=0, augment=False)
RATIOS = (0.5, 0.9)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    return get_baseline(SPEC, small_digits(), tmp_path_factory.mktemp("cache"))


def test_each_point_is_that_layer_alone_pruned_and_the_model_is_untouched(baseline):
    data = small_digits()
    model = baseline.build("simplecnn", data)
    before = copy.deepcopy(model.state_dict())
    result = scan(model, data, RATIOS, seed=0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert set(result.val_acc) == set(prunable_layers(model)) and result.ratios == RATIOS
    # Recompute one point by hand: fc1 alone at 90%, BN recalibrated, on the scan's val images.
    by_hand = copy.deepcopy(model)
    weight = prunable_layers(by_hand)["fc1"].weight
    apply_masks(by_hand, {"fc1.weight": keep_mask(weight.detach().abs(), 0.9)})
    recalibrate_bn(by_hand, data.train, normalizer(data, False), seed=0)
    val = Split(data.val.x[:sensitivity.SCAN_VAL_IMAGES], data.val.y[:sensitivity.SCAN_VAL_IMAGES])
    assert result.val_acc["fc1"][1] == evaluate(by_hand, val, normalizer(data, False))
    assert result.dense_val_acc == evaluate(model, val, normalizer(data, False))


def test_the_scan_is_reused_from_the_cache(baseline, tmp_path, monkeypatch):
    data = small_digits()
    first = get_sensitivity(baseline, "simplecnn", data, tmp_path, ratios=RATIOS)

    def no_rescan(*args, **kwargs):
        raise AssertionError("scanned again instead of reading the cache")

    monkeypatch.setattr(sensitivity, "scan", no_rescan)
    assert get_sensitivity(baseline, "simplecnn", data, tmp_path, ratios=RATIOS) == first
    with pytest.raises(AssertionError, match="scanned again"):  # other ratios: another cache entry
        get_sensitivity(baseline, "simplecnn", data, tmp_path, ratios=(0.3,))


def test_cap_is_the_largest_ratio_within_the_allowed_drop():
    sens = Sensitivity((0.3, 0.5, 0.9), 0.90, {"a": [0.90, 0.86, 0.50], "b": [0.70, 0.60, 0.10]})
    assert sens.cap("a", 0.05) == 0.5
    assert sens.cap("a", 0.5) == 0.9
    assert sens.cap("b", 0.05) == 0.0


def test_caps_lower_the_search_bounds():
    from trainables.models import build_model

    cfg = load_config(["--sensitivity-drop", "0.05"])
    model = build_model("simplecnn", 1, 10, 8)
    plain = {b.name: b for b in layer_bounds(model, cfg, torch.zeros(1, 1, 8, 8))}
    capped = {b.name: b for b in layer_bounds(model, cfg, torch.zeros(1, 1, 8, 8), caps={"fc1": 0.5, "conv1": 0.0})}
    assert plain["fc1"].hi == 0.98 and capped["fc1"].hi == 0.5
    assert capped["conv1"].lo == capped["conv1"].hi == 0.0  # a fragile layer stays dense
    assert capped["conv2"] == plain["conv2"]
