"""Progress of long steps: plain lines off a terminal, one rewritten line on one, nothing for
a quick step; the dense baseline prints one line per epoch."""
from __future__ import annotations

import io
import logging
import re

from tests.trainables.helpers import small_digits
from trainables.baseline import BaselineSpec, get_baseline
from trainables.progress import Ticker, duration

CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # anything but \n


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(stream, seconds_per_item: float, total: int = 10) -> str:
    clock = FakeClock()
    ticker = Ticker("decoding", total, stream=stream, every_s=5.0, clock=clock)
    for i in range(1, total + 1):
        clock.t += seconds_per_item
        ticker.update(i)
    return stream.getvalue()


def test_off_a_terminal_a_slow_step_prints_plain_lines_with_time_left():
    out = run(io.StringIO(), seconds_per_item=2.0)
    lines = out.splitlines()
    assert not CONTROL.search(out)
    assert lines[0] == "decoding: 3/10 (30%) 6s, ~14s left"
    assert lines[-1] == "decoding: 10/10 (100%) 20s" and len(lines) == 4  # every 5 s, then the last


def test_a_quick_step_prints_nothing():
    assert run(io.StringIO(), seconds_per_item=0.1) == ""


def test_on_a_terminal_one_line_is_rewritten_and_ended():
    out = run(Terminal(), seconds_per_item=2.0)
    assert out.count("\r") == 4 and out.endswith("(100%) 20s\n") and out.count("\n") == 1


def test_durations_read_at_a_glance():
    assert [duration(s) for s in (4.4, 65, 3725)] == ["4s", "1m05s", "1h02m"]


def test_baseline_training_prints_each_epoch_with_loss_val_accuracy_and_time_left(tmp_path, caplog):
    spec = BaselineSpec("simplecnn", epochs=3, lr=0.05, batch_size=64, seed=0, augment=False)
    caplog.set_level(logging.INFO, logger="trainables.baseline")
    get_baseline(spec, small_digits(), tmp_path)
    lines = caplog.messages
    epochs = [m for m in lines if ": epoch " in m]
    assert [re.search(r"epoch (\d+/\d+)", m).group(1) for m in epochs] == ["1/3", "2/3", "3/3"]
    assert all(re.search(r"loss \d+\.\d{4} val_acc [01]\.\d{4} \(", m) for m in epochs), epochs
    assert "left)" in epochs[0] and "left" not in epochs[-1]
    assert not any(CONTROL.search(m) for m in lines)
