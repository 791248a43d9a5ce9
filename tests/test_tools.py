"""tools/export_local_model.py, the build script of the shipped model, stays runnable and agrees
with what it made: its reference texts are those of the shipped reference vectors, and it
writes where the local provider reads. (Running it needs torch; the shipped files themselves are
checked by tests/models/test_local_model.py.)"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from citadel.server.models import local

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "export_local_model.py"


def _script_module():
    spec = importlib.util.spec_from_file_location("export_local_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_runs_from_the_repository_root():
    result = subprocess.run(
        [sys.executable, "tools/export_local_model.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "all-MiniLM-L6-v2" in result.stdout and "server/models/assets/all-minilm-l6-v2" in result.stdout


def test_it_writes_what_the_local_provider_reads():
    script = _script_module()
    assert script.ASSETS == local.ASSETS.resolve()
    shipped = json.loads((script.ASSETS / "reference_vectors.json").read_text(encoding="utf-8"))
    assert [item["text"] for item in shipped["items"]] == list(script.REFERENCE_TEXTS)
    assert shipped["max_tokens"] == script.MAX_TOKENS
    listed = {line.split()[1] for line in (script.ASSETS / "SHA256SUMS").read_text().splitlines()}
    assert listed == {"model_int8.onnx", "tokenizer.json"}
    for name in listed:
        assert script.sha256_file(script.ASSETS / name) in (script.ASSETS / "SHA256SUMS").read_text()


def test_it_is_not_part_of_the_installed_package():
    assert not (ROOT / "server" / "models" / "export_local_model.py").exists()
    assert importlib.util.find_spec("citadel.server.models.export_local_model") is None
