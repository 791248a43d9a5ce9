"""Start-up imports only what the embedded default serves with (issue 20: start to ready).

qdrant-client (~0.5 s to import) is for a Qdrant server or the qdrant-local engine, and the
SDK behind the client commands (~0.15 s) for `citadel collections ...`; `citadel serve` on the
embedded engine needs neither. Checked in a fresh interpreter that imports what serve does.
"""

from __future__ import annotations

import subprocess
import sys

SERVE_PATH = """
import sys
from citadel.server import cli
from citadel.server.gateway import Gateway
from citadel.server.store.edge import EdgeStore
from citadel.server.workers.supervisor import Supervisor
heavy = sorted(m for m in ("qdrant_client", "citadel.client", "citadel.server.cli_commands") if m in sys.modules)
print(",".join(heavy))
"""


def test_serving_on_the_embedded_engine_imports_neither_qdrant_client_nor_the_sdk():
    out = subprocess.run([sys.executable, "-c", SERVE_PATH], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_the_client_commands_still_load_when_asked_for():
    out = subprocess.run(
        [sys.executable, "-m", "citadel.server.cli", "collections", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "collections" in out.stdout
