"""Fine-tuning keeps pruned weights exactly zero; a diverging run fails with its reason."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pruners.base import Distillation, PruneContext
from pruners.registry import get_pruner
from tests.trainables.helpers import small_digits
from trainables import loops
from trainables.baseline import normalizer
from trainables.loops import DivergedError, distillation_loss, evaluate, recalibrate_bn, train
from trainables.models import SimpleCNN


def test_pruned_weights_stay_exactly_zero_through_fine_tuning_with_momentum_decay_and_distillation():
    data = small_digits()
    norm = normalizer(data, False)
    torch.manual_seed(0)
    dense = SimpleCNN(1, 10, 8)
    train(dense, data.train, norm, epochs=1, lr=0.05, batch_size=64, seed=0)
    ratios = {"conv1": 0.2, "conv2": 0.6, "fc1": 0.95, "fc2": 0.4}
    result = get_pruner("magnitude")(dense, ratios, {}, PruneContext(example_input=norm(data.val.x[:1])))
    model = result.model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, data.train, norm, epochs=2, lr=0.1, batch_size=32, seed=1, masks=result.masks,
          teacher=copy.deepcopy(dense), distill=Distillation(4.0, 0.5), weight_decay=1e-3)
    params = dict(model.named_parameters())
    for name, mask in result.masks.items():
        assert torch.count_nonzero(params[name][~mask]) == 0, name  # exactly 0, not small
        assert not torch.equal(params[name][mask], before[name][mask])  # the rest did train


def test_training_learns_digits():
    data = small_digits(800)
    norm = normalizer(data, False)
    torch.manual_seed(0)
    model = SimpleCNN(1, 10, 8)
    train(model, data.train, norm, epochs=4, lr=0.05, batch_size=64, seed=0)
    assert evaluate(model, data.val, norm) > 0.85


def test_divergence_raises_with_the_reason():
    data = small_digits()
    torch.manual_seed(0)
    with pytest.raises(DivergedError, match="loss became"):
        train(SimpleCNN(1, 10, 8), data.train, normalizer(data, False), epochs=2, lr=1e6, batch_size=64, seed=0)


def test_bn_recalibration_changes_statistics_but_not_weights():
    data = small_digits()
    norm = normalizer(data, False)
    torch.manual_seed(0)
    model = SimpleCNN(1, 10, 8)
    weights = {k: v.clone() for k, v in model.named_parameters()}
    recalibrate_bn(model, data.train, norm, n_batches=3, batch_size=64)
    assert not torch.allclose(model.bn1.running_mean, torch.zeros_like(model.bn1.running_mean))
    assert model.bn1.momentum == 0.1 and not model.training
    for k, v in model.named_parameters():
        assert torch.equal(v, weights[k])


def test_bn_recalibration_forgets_the_old_statistics():
    # The statistics must be those of the data alone: reset first, then a plain average.
    data = small_digits()
    norm = normalizer(data, False)
    torch.manual_seed(0)
    model = SimpleCNN(1, 10, 8)
    recalibrated = []
    for stale in (5.0, -3.0):
        for bn in (model.bn1, model.bn2):
            bn.running_mean.fill_(stale)
            bn.running_var.fill_(abs(stale))
            bn.num_batches_tracked.fill_(1000)
        recalibrate_bn(model, data.train, norm, n_batches=1, batch_size=len(data.train))
        recalibrated.append({k: v.clone() for k, v in model.state_dict().items() if "running" in k})
    assert recalibrated[0].keys() == recalibrated[1].keys()
    for k in recalibrated[0]:
        torch.testing.assert_close(recalibrated[0][k], recalibrated[1][k])
    with torch.no_grad():  # one batch of the whole split: the statistics of bn1's input exactly
        h = model.conv1(norm(data.train.x))
    torch.testing.assert_close(model.bn1.running_mean, h.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(model.bn1.running_var, h.var(dim=(0, 2, 3), unbiased=True))


LOGITS = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]]), torch.tensor([[1.0, 0.0, -1.0], [-1.0, 2.0, 0.5]])
TARGETS = torch.tensor([0, 2])


def test_distillation_loss_is_hintons_tempered_kl_scaled_by_t_squared():
    student, teacher = LOGITS
    t, alpha = 4.0, 0.3
    p_teacher = torch.softmax(teacher / t, dim=1)  # tempered teacher
    kl = (p_teacher * (p_teacher.log() - torch.log_softmax(student / t, dim=1))).sum(dim=1).mean()
    expected = (1 - alpha) * nn.functional.cross_entropy(student, TARGETS) + alpha * t**2 * kl
    torch.testing.assert_close(distillation_loss(student, teacher, TARGETS, t, alpha), expected)


def test_soft_target_gradient_is_t_times_the_tempered_probability_gap():
    # d/dz [T^2 KL(p_t || p_s)] = T (softmax(z/T) - softmax(v/T)) / batch: with the T^2 factor the
    # soft targets' gradient does not fade as T grows (Hinton et al., section 2).
    teacher = LOGITS[1]
    for t in (1.0, 4.0, 10.0):
        student = LOGITS[0].clone().requires_grad_()
        distillation_loss(student, teacher, TARGETS, t, alpha=1.0).backward()
        gap = torch.softmax(student.detach() / t, dim=1) - torch.softmax(teacher / t, dim=1)
        torch.testing.assert_close(student.grad, t * gap / len(teacher))


def test_fine_tuning_distills_from_the_teachers_logits(monkeypatch):
    data = small_digits(64)
    norm = normalizer(data, False)
    torch.manual_seed(0)
    student, teacher = SimpleCNN(1, 10, 8), SimpleCNN(1, 10, 8).eval()
    calls = []

    def spy(out, teacher_out, targets, temperature, alpha):
        calls.append((teacher_out, temperature, alpha))
        return distillation_loss(out, teacher_out, targets, temperature, alpha)

    monkeypatch.setattr(loops, "distillation_loss", spy)
    train(student, data.train, norm, epochs=1, lr=0.01, batch_size=64, seed=0, teacher=teacher,
          distill=Distillation(3.0, 0.7))
    assert len(calls) == 1
    teacher_out, temperature, alpha = calls[0]
    x = next(loops.batches(data.train, 64, norm, torch.Generator().manual_seed(0)))[0]
    with torch.no_grad():
        torch.testing.assert_close(teacher_out, teacher(x))
    assert (temperature, alpha) == (3.0, 0.7)


def recorded_lrs(monkeypatch, **kwargs) -> list[float]:
    """The learning rate of every optimizer step `train` takes."""
    lrs: list[float] = []
    real_step = torch.optim.SGD.step

    def step(self, *a, **k):
        lrs.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.SGD, "step", step)
    data = small_digits(200)
    torch.manual_seed(0)
    train(SimpleCNN(1, 10, 8), data.train, normalizer(data, False), epochs=3, lr=0.05, batch_size=64, seed=0,
          **kwargs)
    monkeypatch.undo()
    return lrs


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_training_from_step_k_runs_the_rest_of_the_same_schedule(monkeypatch, schedule):
    # Lottery's retraining from rewind point k: T - k steps at the rates the whole run had there.
    full = recorded_lrs(monkeypatch, schedule=schedule)
    rest = recorded_lrs(monkeypatch, schedule=schedule, start_step=5)
    assert len(full) == loops.total_steps(200, 64, 3) == 12
    assert rest == pytest.approx(full[5:], rel=1e-12, abs=0)
    with pytest.raises(ValueError, match="start_step"):
        recorded_lrs(monkeypatch, start_step=12)


def test_quantization_aware_training_forwards_int8_weights_and_updates_float_ones():
    from pruners.quantize import fake_quantize

    data = small_digits(128)
    torch.manual_seed(0)
    model = SimpleCNN(1, 10, 8)
    on_grid: list[bool] = []
    model.conv2.register_forward_pre_hook(
        lambda m, _: on_grid.append(torch.equal(m.weight, fake_quantize(m.weight).to(m.weight.dtype))))
    train(model, data.train, normalizer(data, False), epochs=1, lr=0.05, batch_size=64, seed=0,
          fake_quant=["conv2.weight", "fc1.weight"])
    assert on_grid == [True, True]  # every training forward saw the int8 grid
    # ... while the stored weights stay float (the straight-through update), off the grid.
    assert not torch.equal(model.conv2.weight, fake_quantize(model.conv2.weight))
    on_grid.clear()
    train(model, data.train, normalizer(data, False), epochs=1, lr=0.05, batch_size=64, seed=0)
    assert on_grid == [False, False]  # and without fake_quant, plain float training


def test_quantization_aware_step_updates_the_float_weights_not_their_int8_copies():
    from pruners.quantize import fake_quantize

    data = small_digits(64)
    torch.manual_seed(0)
    model = SimpleCNN(1, 10, 8)
    before = model.conv2.weight.detach().clone()
    # One step at a negligible rate: the float weights barely move, so they must still be the
    # old float values (not snapped onto the int8 grid, which is ~1e-3 away).
    train(model, data.train, normalizer(data, False), epochs=1, lr=1e-9, batch_size=64, seed=0,
          fake_quant=["conv2.weight"])
    torch.testing.assert_close(model.conv2.weight.detach(), before, rtol=0, atol=1e-7)
    assert (fake_quantize(before) - before).abs().max() > 1e-4
