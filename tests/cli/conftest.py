"""Runs the `citadel` command as a user would: a subprocess against a real gateway."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from citadel.client import Client


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def citadel(*args: str, target: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    # The caller's own CITADEL_TARGET / CITADEL_API_KEY must not leak in.
    base = {k: v for k, v in os.environ.items() if k not in ("CITADEL_TARGET", "CITADEL_API_KEY")}
    proc = subprocess.run(
        [sys.executable, "-m", "citadel.server.cli", *args],
        env={**base, "CITADEL_TARGET": target, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def unique(prefix: str = "cli") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def cli(gateway):
    """`cli("collections", "list")` runs citadel against the session gateway."""
    return lambda *args, **kw: citadel(*args, target=gateway.grpc_target, **kw)


@pytest.fixture
def sdk(gateway) -> Client:
    with Client(gateway.grpc_target, timeout=30, metadata=[("cache-control", "no-cache")]) as client:
        yield client
