"""The dense baseline's recipe: per-image crop + flip augmentation, the one-cycle schedule, the
per-dataset defaults, and a cache key that never mixes recipes."""
from __future__ import annotations

import pytest
import torch

from search.config import load_config
from search.run import baseline_spec
from trainables import loops
from trainables.baseline import BaselineSpec
from trainables.data import load_dataset


def test_augmentation_crops_and_flips_each_image_independently():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 32, 32)
    out = loops._augment(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape
    # Each output is a 32x32 window of its own reflect-padded (maybe flipped) image: find it.
    offsets = set()
    for i in range(len(x)):
        found = None
        for img in (x[i], x[i].flip(2)):
            padded = torch.nn.functional.pad(img.unsqueeze(0), (4, 4, 4, 4), mode="reflect")[0]
            for dy in range(9):
                for dx in range(9):
                    if torch.equal(padded[:, dy:dy + 32, dx:dx + 32], out[i]):
                        found = (dy, dx)
        assert found is not None, i
        offsets.add(found)
    assert len(offsets) > 10  # per image, not one shift for the whole batch


def lr_trace(schedule: str, steps: int = 40) -> list[float]:
    """The learning rate at every step, read off the optimizer through on_iteration."""
    from trainables.data import Split

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    split = Split(torch.randint(0, 255, (steps * 8, 1, 2, 2), dtype=torch.uint8), torch.randint(0, 2, (steps * 8,)))
    seen: list[float] = []
    original = torch.optim.SGD.step

    def spy(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    torch.optim.SGD.step = spy
    try:
        loops.train(model, split, loops.Normalizer((0.5,), (0.25,)), epochs=1, lr=0.1, batch_size=8, seed=0,
                    schedule=schedule)
    finally:
        torch.optim.SGD.step = original
    return seen


def test_onecycle_warms_up_to_the_peak_then_anneals_while_cosine_starts_at_the_peak():
    one, cos = lr_trace("onecycle"), lr_trace("cosine")
    peak = max(range(len(one)), key=one.__getitem__)
    assert one[0] == pytest.approx(0.1 / 25)  # starts at lr / div_factor
    assert 0 < peak < len(one) // 3 and one[peak] == pytest.approx(0.1, rel=0.05)
    assert one[-1] < 0.1 / 100
    assert cos[0] == pytest.approx(0.1) and all(a >= b for a, b in zip(cos, cos[1:]))


def test_unknown_schedule_is_refused():
    with pytest.raises(ValueError, match="schedule"):
        loops._scheduler(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), "step", 0.1, 10)


def test_cifar10_defaults_to_augmentation_and_onecycle_digits_to_neither(tmp_path):
    cifar = load_config(["--dataset", "cifar10", "--data-dir", str(tmp_path)])
    digits = load_config(["--dataset", "digits"])
    assert (cifar.augment_on, cifar.schedule) == (True, "onecycle")
    assert (digits.augment_on, digits.schedule) == (False, "cosine")
    forced = load_config(["--dataset", "cifar10", "--data-dir", str(tmp_path), "--augment", "false",
                          "--baseline-schedule", "cosine"])
    assert (forced.augment_on, forced.schedule) == (False, "cosine")


def test_the_cache_key_separates_recipes(tmp_path):
    data = load_dataset("digits", None, tmp_path, 0, 0.1, 0.1, 0)
    spec = baseline_spec(load_config(["--dataset", "digits"]), len(data.train))
    keys = {spec.key(data),
            BaselineSpec(**{**spec.__dict__, "schedule": "onecycle"}).key(data),
            BaselineSpec(**{**spec.__dict__, "augment": True}).key(data)}
    assert len(keys) == 3
