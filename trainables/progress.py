"""Progress of long steps (baseline epochs, decoding an image folder, evaluating, exporting).

On a terminal one line is rewritten in place; anywhere else (CI logs, `| tee`, a file) each update
is its own plain line, at most one every `every_s` seconds, with no control characters, so logs
stay readable. No Ray, no MLflow: loops use it too.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def duration(seconds: float) -> str:
    """12s, 3m05s, 1h02m: short and unambiguous in one log line."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def time_left(elapsed: float, done: float, total: float) -> str:
    if done <= 0 or done >= total:
        return ""
    return f", ~{duration(elapsed / done * (total - done))} left"


def step(what: str, stream: TextIO | None = None) -> None:
    """One plain line as a step of a command starts (on stderr: stdout keeps the results)."""
    out = stream if stream is not None else sys.stderr
    out.write(f"{what} ...\n")
    out.flush()


class Ticker:
    """`update(done)` as a loop goes. Silent for a step that ends within `every_s`; past that, a
    line every `every_s` seconds and the last one (done == total). On stderr by default."""

    def __init__(self, what: str, total: int, stream: TextIO | None = None, every_s: float = 5.0,
                 clock: Callable[[], float] = time.perf_counter):
        self.what, self.total, self.every_s, self.clock = what, total, every_s, clock
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = self.last = clock()
        self.shown = False

    def update(self, done: int) -> None:
        now = self.clock()
        final = done >= self.total
        if now - self.last < self.every_s and not (final and self.shown):
            return
        self.last, self.shown = now, True
        elapsed = now - self.start
        line = (f"{self.what}: {done:,}/{self.total:,} ({done / max(1, self.total):.0%}) "
                f"{duration(elapsed)}{time_left(elapsed, done, self.total)}")
        if self.tty:  # one line rewritten in place; the final update ends it
            self.stream.write(f"\r\x1b[K{line}{chr(10) if final else ''}")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
