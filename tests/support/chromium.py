"""Headless Chromium for page tests: loopback only (every other host fails to resolve), no
background networking, a fresh profile each time."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from tests.conftest import require_binary


def _flags(profile: Path) -> list[str]:
    return [
        require_binary("chromium", "apt-get install -y chromium"),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--window-size=1280,900",
    ]


def chromium(url: str, profile: Path, *extra: str, budget_ms: int = 15000) -> str:
    """Runs Chromium on `url` with `extra` flags (--dump-dom, --screenshot=...); its stdout."""
    command = [*_flags(profile), f"--virtual-time-budget={budget_ms}", *extra, url]
    done = subprocess.run(command, check=True, capture_output=True, timeout=120)
    return done.stdout.decode("utf-8", "replace")


def open_until(url: str, profile: Path, done: threading.Event, timeout: float = 120.0) -> None:
    """Keeps `url` open until `done` is set, in real time. For pages that wait on the network
    (a stream): under --virtual-time-budget their clock runs ahead and the DOM may be dumped
    before they finish, so such a page reports back to its own server instead."""
    proc = subprocess.Popen([*_flags(profile), url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not done.wait(timeout):
            raise AssertionError(f"the page at {url} did not report within {timeout} s")
    finally:
        proc.kill()
        proc.wait(10)


def chromium_dom(url: str, profile: Path, budget_ms: int = 15000) -> str:
    """The page's DOM once its scripts ran (within the virtual time budget)."""
    return chromium(url, profile, "--dump-dom", budget_ms=budget_ms)
