"""Every shipped example config passes `citadel config check` and starts a gateway as it is
(ports and data dir given on the command line, as a test must)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.gateway_process import GatewayProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "server").glob("**/examples/*.toml")) + sorted(
    (ROOT / "server" / "config_examples").glob("*.toml")
)


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {"citadel.example.toml", "models.ollama.toml"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_passes_config_check_and_starts(example, tmp_path):
    checked = subprocess.run(
        [sys.executable, "-m", "citadel.server.cli", "config", "check", str(example)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
    assert "ok (" in checked.stdout and "models: 9 models" in checked.stdout
    proc = GatewayProcess(tmp_path / "data", args=["--config", str(example)]).start()
    assert proc.stop() == 0
