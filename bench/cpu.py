"""How busy is the machine besides this benchmark? CPU used by this process tree (driver, Ray
services, trial workers) and by everyone else (other tenants of a shared VM), so a wall-clock
figure can say whether someone else's test run was in it."""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _system_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (f + [0] * 8)[:8]
    return (user + nice + system + irq + softirq) / _TICK, steal / _TICK


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, start time in ticks, own utime+stime in ticks), from /proc."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            raw = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        rest = raw[raw.rindex(")") + 2:].split()
        out[int(d)] = (int(rest[1]), int(rest[19]), int(rest[11]) + int(rest[12]))
    return out


def _descendants(table: dict[int, tuple[int, int, int]], root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            out.append(pid)
            stack.extend(children.get(pid, []))
    return out


def _category(pid: int, root: int) -> str:
    """driver | trials | bare-workers | the Ray service's name (raylet, gcs_server, dashboard.py,
    ray::DashboardAgent, ray::IDLE, ...)."""
    if pid == root:
        return "driver"
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "other"
    first = args[0]
    if first.startswith("ray::") and ("ImplicitFunc" in first or "train" in first):
        return "trials"
    if "multiprocessing" in " ".join(args[1:3]):
        return "bare-workers"
    if first.startswith("ray::"):
        return first.split()[0]
    if os.path.basename(first).startswith("python"):
        script = next((a for a in args[1:] if a.endswith(".py")), args[1] if len(args) > 1 else first)
        return os.path.basename(script)
    return os.path.basename(first)


class CpuMonitor:
    """Wall time; CPU used by this process and its descendants (driver, Ray services, trial
    workers: sampled every `interval` s, because Ray reaps its dead workers without adding them
    to anyone's child CPU times); and CPU used by everything else on the machine (other
    tenants) over a `with` block."""

    def __init__(self, interval: float = 1.0):
        import threading

        self.interval, self.root = interval, os.getpid()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.by_category: dict[str, float] = {}
        self._last: dict[tuple[int, int], int] = {}

    def _sample(self, count: bool = True) -> None:
        table = _proc_table()
        for pid in _descendants(table, self.root):
            _, start, cpu = table[pid]
            key = (pid, start)
            prev = self._last.get(key, 0 if count else cpu)
            if count and cpu > prev:
                cat = _category(pid, self.root)
                self.by_category[cat] = self.by_category.get(cat, 0.0) + (cpu - prev) / _TICK
            self._last[key] = cpu

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> CpuMonitor:
        self._sample(count=False)
        self.t0, (self.busy0, self.steal0) = time.perf_counter(), _system_cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        wall = time.perf_counter() - self.t0
        busy, steal = _system_cpu()
        mine = sum(self.by_category.values())
        others = max(0.0, busy - self.busy0 - mine)
        self.result = {"wall_s": wall, "my_cpu_s": mine, "my_cores": mine / wall,
                       "my_cores_by_category": {k: v / wall for k, v in sorted(self.by_category.items())},
                       "others_cpu_s": others, "others_cores": others / wall,
                       "steal_cores": (steal - self.steal0) / wall,
                       "load_avg_end": [round(x, 2) for x in os.getloadavg()]}


def wait_quiet(max_wait_s: float, threshold_cores: float = 0.3, window_s: float = 5.0) -> dict[str, float]:
    """Wait (at most max_wait_s) until other tenants use less than threshold_cores over a
    window, so a wall-clock measurement is not someone else's test run. Returns what it saw."""
    t0, last = time.perf_counter(), math.nan
    while True:
        with CpuMonitor() as m:
            time.sleep(window_s)
        last = m.result["others_cores"]
        waited = time.perf_counter() - t0
        if last < threshold_cores or waited >= max_wait_s:
            return {"waited_s": round(waited, 1), "others_cores_before": round(last, 3),
                    "quiet": last < threshold_cores}
