"""The README's authentication walk-through, run as printed: keys made into a config file,
`make run CONFIG=citadel.toml` (here: a test gateway started with that file), then the calls
of each role from another shell, with localhost:8000 and the CLI's target pointing at it."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from tests.support.gateway_process import GatewayProcess

ROOT = Path(__file__).resolve().parents[2]
MAKE_RUN = "make run CONFIG=citadel.toml"


def auth_examples() -> tuple[list[str], list[str]]:
    """The server side (up to `make run`) and the client side of the walk-through."""
    text = (ROOT / "README.md").read_text()
    section = re.search(r"<!-- auth-examples.*?-->(.*?)<!-- /auth-examples -->", text, re.S)
    assert section, "README lost its auth-examples block"
    blocks = re.findall(r"```sh\n(.*?)```", section.group(1), re.S)
    server, client = ([line for line in b.splitlines() if line.strip()] for b in blocks)
    assert server[-1] == MAKE_RUN
    return server[:-1], client


def run(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = line.replace(".venv/bin/citadel", str(ROOT / ".venv/bin/citadel"))
    return subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=120, cwd=cwd, env=env
    )


def test_readme_auth_walkthrough_runs_as_printed(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CITADEL_API_KEY"}
    server, client = auth_examples()
    for line in server:
        done = run(line, tmp_path, env)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
    assert "auth on" in done.stdout  # `config check` of the file the keys went into
    assert oct((tmp_path / "acme-admin.key").stat().st_mode & 0o777) == "0o600"

    proc = GatewayProcess(tmp_path / "data", args=["--config", str(tmp_path / "citadel.toml")]).start()
    try:
        env["CITADEL_TARGET"] = proc.grpc_target
        outputs = []
        for line in client:
            done = run(line.replace("localhost:8000", f"127.0.0.1:{proc.http_port}"), tmp_path, env)
            assert done.returncode == 0, f"{line}\n{done.stderr}"
            outputs.append(done.stdout)
    finally:
        proc.stop()
    assert "films" in outputs[0]
    assert json.loads(outputs[1]) == {"upsertedCount": 1}
    assert [r["id"] for r in json.loads(outputs[2])["results"]] == ["alien"]
    refused = json.loads(outputs[3])
    assert refused["code"] == 7  # PERMISSION_DENIED, as the README says
    assert "may not call" in refused["message"] and "needs admin" in refused["message"]
