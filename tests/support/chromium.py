"""Headless Chromium for page tests: loopback only (every other host fails to resolve), no
background networking, a fresh profile each time."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import require_binary


def chromium(url: str, profile: Path, *extra: str, budget_ms: int = 15000) -> str:
    """Runs Chromium on `url` with `extra` flags (--dump-dom, --screenshot=...); its stdout."""
    binary = require_binary("chromium", "apt-get install -y chromium")
    flags = [
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
        f"--virtual-time-budget={budget_ms}",
    ]
    done = subprocess.run([binary, *flags, *extra, url], check=True, capture_output=True, timeout=120)
    return done.stdout.decode("utf-8", "replace")


def chromium_dom(url: str, profile: Path, budget_ms: int = 15000) -> str:
    """The page's DOM once its scripts ran (within the virtual time budget)."""
    return chromium(url, profile, "--dump-dom", budget_ms=budget_ms)
