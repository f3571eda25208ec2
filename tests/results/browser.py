"""Real-browser helpers shared by the UI tests: Debian's Chromium (`bash .ci/install-browser.sh`),
driven plainly (--dump-dom / --screenshot) or through Selenium and Debian's ChromeDriver where a
test must look inside a frame or wait for a page to draw. Servers are started in their own process
group and stopped with it."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.servers import free_port, stop_group  # noqa: F401 - re-exported to the UI tests

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-artifacts"
# STACK_NOTES: root needs --no-sandbox; the rest keeps a headless run offline and repeatable.
BASE_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-dev-shm-usage", "--window-size=1400,900")
FLAGS = (*BASE_FLAGS, "--virtual-time-budget=8000")


def require(path: Path) -> Path:
    """CI must have the browser (install-browser.sh); a developer without it: skip."""
    if not path.exists():
        message = f"{path} missing: run bash .ci/install-browser.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextmanager
def serve(argv: list[str], url_ready: str, log: Path, env: dict | None = None,
          timeout_s: float = 180) -> Iterator[str]:
    """Starts `python argv...`, waits until `url_ready` answers 200, yields the server's output so far."""
    with log.open("w") as fh:
        proc = subprocess.Popen([sys.executable, *argv], stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s  # seconds idle; far more on a loaded 2-core machine
        while True:
            try:
                with urllib.request.urlopen(url_ready, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{' '.join(argv)} did not come up on {url_ready}:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield log.read_text()
    finally:
        stop_group(proc)


@contextmanager
def selenium_chromium(profile: Path) -> Iterator:
    """A headless Chromium under Selenium, through Debian's ChromeDriver (never a downloaded one)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    require(CHROMIUM)
    require(CHROMEDRIVER)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*BASE_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(120)
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition, timeout_s: float = 90, what: str = "the page to show it"):
    """Polls `condition(driver)` until it is truthy (the UIs fetch after the first render)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout_s, poll_frequency=0.5).until(condition)
    except TimeoutException:
        pytest.fail(f"{driver.current_url}: timed out after {timeout_s:.0f}s waiting for {what}")


def screenshot(driver, name: str) -> Path:
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / name
    driver.save_screenshot(str(path))
    return path
