"""Fixtures for the fuzz tests: a gateway of their own (fuzzed writes and queued jobs stay out
of the shared one), started like `make run` with authentication off, with the collections of
seed.py in it. Once the fuzzers are done, its log must hold no error: a failure the callers
saw only as a clean status (or not at all, mid-stream) still fails the suite."""

from __future__ import annotations

import json

import pytest

from tests.fuzz import seed
from tests.support.gateway_process import GatewayProcess


def logged_errors(log: str) -> list[str]:
    """Error entries of the gateway's JSON log, and anything printed that is a traceback."""
    found = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if "Traceback" in line:
                found.append(line)
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
            found.append(line[:3000])
    return found


@pytest.fixture(scope="package")
def fuzz_gateway(tmp_path_factory) -> GatewayProcess:
    proc = GatewayProcess(
        tmp_path_factory.mktemp("fuzz-gateway") / "data", env={"CITADEL_LOG_LEVEL": "WARNING"}
    ).start()
    seed.seed(proc.channel())
    yield proc
    proc.stop()
    errors = logged_errors(proc.log())
    assert not errors, f"the gateway logged {len(errors)} errors while fuzzed:\n" + "\n".join(errors[:5])
