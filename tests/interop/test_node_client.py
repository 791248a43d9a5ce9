"""A Node.js client (@grpc/grpc-js + @grpc/proto-loader) against the gateway, loading proto/
directly: create, upsert, search, an error status, and a batch job watched to its end."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import grpc_tools

from tests.conftest import require_binary

HERE = Path(__file__).parent / "node"
ROOT = HERE.parents[2]


def test_node_client_end_to_end(gateway):
    node = require_binary("node", "apt-get install -y nodejs npm")
    if not (HERE / "node_modules" / "@grpc" / "grpc-js").exists():
        npm = require_binary("npm", "apt-get install -y npm")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, capture_output=True, timeout=300)
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    done = subprocess.run(
        [node, "client.mjs", gateway.grpc_target, str(ROOT), str(well_known)],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["upserted"] == 2
    assert (out["top"], out["topLang"]) == ("north", "js")
    assert out["error"]["name"] == "NOT_FOUND" and "no-such-collection-from-node" in out["error"]["details"]
    states = [e["state"] for e in out["events"]]
    assert states[-1] == "JOB_STATE_SUCCEEDED" and out["events"][-1]["done"] == 250
