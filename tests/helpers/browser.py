"""Headless Chromium for the page tests (docs site, dashboard)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install -y chromium; .ci/run installs it)"
)


def run_chromium(url: str, work_dir: Path, screenshot: Path | None = None, window: str = "1400,900") -> tuple[str, str]:
    """Headless Chromium: (rendered DOM, browser log with the page's console messages); optionally a screenshot."""
    base = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=15000",
        f"--window-size={window}",
    ]
    profile = tempfile.mkdtemp(prefix="chromium_profile_", dir=work_dir)
    dump = subprocess.run(
        [*base, f"--user-data-dir={profile}", "--dump-dom", url], capture_output=True, text=True, timeout=120
    )
    assert dump.returncode == 0, dump.stderr[-3000:]
    if screenshot is not None:
        profile = tempfile.mkdtemp(prefix="chromium_profile_", dir=work_dir)
        shot = subprocess.run(
            [*base, f"--user-data-dir={profile}", f"--screenshot={screenshot}", url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-3000:]
    return dump.stdout, dump.stderr


def console_messages(browser_log: str) -> list[str]:
    """The page's console output (errors, uncaught exceptions, logs) in Chromium's --enable-logging output."""
    return [line for line in browser_log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
