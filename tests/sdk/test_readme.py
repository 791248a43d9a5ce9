"""The README's Python SDK example, run as printed against a real gateway (only the address
changes: the README says localhost:8081, the test gateway has its own port)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_sdk_example_runs(gateway, tmp_path):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- sdk-example.*?```python\n(.*?)```", text, re.S)
    assert block, "README lost its sdk-example block"
    script = tmp_path / "example.py"
    script.write_text(block.group(1).replace("localhost:8081", gateway.grpc_target))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "dune {'year': 1965.0}"
    assert lines[-2] == "SUCCEEDED 100 of 100"
    assert lines[-1] == "StatusCode.NOT_FOUND collection 'no-such-collection' not found"
