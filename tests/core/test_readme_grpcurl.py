"""The README's grpcurl examples, run exactly as printed against a real gateway.

Only the address changes: the README says localhost:8081, the test gateway has its own port.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_examples() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- grpcurl-examples.*?```sh\n(.*?)```", text, re.S)
    assert block, "README lost its grpcurl-examples block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_grpcurl_examples_run_as_printed(gateway):
    outputs = []
    for line in readme_examples():
        argv = shlex.split(line.replace("localhost:8081", gateway.grpc_target))
        argv[0] = str(ROOT / argv[0])
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=ROOT)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        outputs.append(done.stdout)
    search = json.loads(outputs[4])
    assert search["results"][0]["id"] == "dune"
    assert search["results"][0]["metadata"] == {"genre": "scifi", "year": 1965}
    filtered = json.loads(outputs[5])
    assert [r["id"] for r in filtered["results"]] == ["emma"]
    assert json.loads(outputs[6]) == {"deletedCount": "1"}
    assert json.loads(outputs[7]) == {"status": "SERVING"}
