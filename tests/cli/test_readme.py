"""The README's CLI examples, run exactly as printed (in a scratch directory, with CITADEL_TARGET
pointing at the test gateway instead of the default localhost:8081)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- cli-examples.*?```sh\n(.*?)```", text, re.S)
    assert block, "README lost its cli-examples block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_cli_examples_run_as_printed(gateway, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CITADEL_API_KEY"}
    env["CITADEL_TARGET"] = gateway.grpc_target
    outputs = []
    for line in readme_examples():
        command = line.replace(".venv/bin/citadel", str(ROOT / ".venv/bin/citadel"))
        done = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
        )
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        outputs.append(done)
    assert "job " in outputs[2].stdout and "succeeded, 2 of 2 items written" in outputs[2].stdout
    assert outputs[3].stdout.splitlines()[1].split()[1] == "n1"
    assert [r["id"] for r in json.loads(outputs[4].stdout)["results"]] == ["n2"]
    assert len(json.loads(outputs[5].stdout)) == 384
    assert "notes-demo: 384 dimensions, cosine, 2 vectors" in outputs[7].stdout
    assert outputs[-1].stdout == "deleted collection notes-demo\n"
