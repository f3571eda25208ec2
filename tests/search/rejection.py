"""The check every bad-input test makes: exit 2, one line naming the value, in seconds, and the
--home folder exactly as it was (nothing created or half-created)."""
from __future__ import annotations

import time
from pathlib import Path

import search.run as run_module

PASSWORD = "s3cret-pw"  # a secret the bad input carries; it must never be printed


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def check_rejected(argv, expected, home, capsys, secret: str = PASSWORD):
    """Exit 2, one line, in seconds; --home exactly as before (no MLflow or Optuna DB, no cache)."""
    before = snapshot(home)
    start = time.monotonic()
    code = run_module.main([*argv, "--home", str(home)] if "--home" not in argv else argv)
    took = time.monotonic() - start
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, (code, err[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert secret not in out + err
    assert snapshot(home) == before
    assert took < 20, f"took {took:.1f}s"
    return took
