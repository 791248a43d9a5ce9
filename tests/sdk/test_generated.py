"""The committed SDK is what betterproto2 writes from proto/ today (as `make generate` runs it),
and it lives in its own package: its `google` cannot shadow protobuf's."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
from pathlib import Path

import google.protobuf

import citadel.sdk
from citadel.sdk.google import protobuf as sdk_protobuf

ROOT = Path(__file__).resolve().parents[2]


def files_under(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )


def test_committed_sdk_matches_the_protos(tmp_path):
    protos = sorted(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto/citadel").rglob("*.proto"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-Iproto",
            "-Iproto/vendor",
            f"--python_betterproto2_out=client_generation=sync:{tmp_path}",
            *protos,
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    committed = ROOT / "generated/sdk"
    assert files_under(tmp_path) == files_under(committed)
    drifted = [
        f for f in files_under(committed) if not filecmp.cmp(tmp_path / f, committed / f, shallow=False)
    ]
    assert drifted == [], "generated/sdk drifted from proto/: run `make generate`"


def test_sdk_does_not_shadow_protobuf():
    assert Path(citadel.sdk.__file__).parent == ROOT / "generated/sdk"
    assert "site-packages" in google.protobuf.__file__
    assert sdk_protobuf.__name__ == "citadel.sdk.google.protobuf"
    # Both kinds of messages live side by side in one process.
    from citadel.client import vector
    from citadel.vector.v1 import resources_pb2

    wire = resources_pb2.Vector(id="a", embedding=[1, 2]).SerializeToString()
    assert vector.Vector.parse(wire) == vector.Vector(id="a", embedding=[1.0, 2.0])
