"""A real gateway pointed at a Qdrant that is not there (issue 22): `CITADEL_QDRANT_URL` at a
loopback port that refuses, or at a bare listener that never answers. Start-up stops at once
with one line naming Qdrant (URL redacted), the reason and the settings to check, and no
traceback or secret; it does not sit waiting for its start-up timeout. (Once started, the
store answers calls UNAVAILABLE the same way: tests/store/test_qdrant_transport.py.)
"""

from __future__ import annotations

import re
import time

import pytest

from tests.support.gateway_process import GatewayProcess
from tests.support.redis_server import free_port
from tests.support.tcp_listener import Listener

SECRET = "qdrant-pass-7"


def start_against(tmp_path, port: int, extra: dict[str, str]) -> tuple[GatewayProcess, str, float]:
    env = {
        "CITADEL_QDRANT_URL": f"http://citadel:{SECRET}@127.0.0.1:{port}",
        "CITADEL_QDRANT_GRPC_PORT": str(port),
        **extra,
    }
    gateway = GatewayProcess(tmp_path / "data", env=env)
    start = time.monotonic()
    with pytest.raises(RuntimeError) as e:
        gateway.start()
    took = time.monotonic() - start
    assert re.match(r"gateway exited with [1-9]", str(e.value)), str(e.value)[-2000:]
    return gateway, gateway.log(), took


@pytest.mark.parametrize("prefer_grpc", ["true", "false"])
def test_a_refusing_qdrant_stops_start_up_naming_it(tmp_path, prefer_grpc):
    port = free_port()
    gateway, log, took = start_against(tmp_path, port, {"CITADEL_QDRANT_PREFER_GRPC": prefer_grpc})
    assert SECRET not in log
    assert f"start-up failed: store: Qdrant at http://***@127.0.0.1:{port}" in log, log[-3000:]
    assert "is unavailable" in log and "check store.qdrant_url" in log
    assert ("store.qdrant_grpc_port" in log) == (prefer_grpc == "true")
    assert "Traceback" not in log and "UserWarning" not in log
    assert took < 30, f"start-up took {took:.1f} s to give up"  # it did not freeze


def test_a_qdrant_that_never_answers_stops_start_up_after_its_timeout(tmp_path):
    with Listener("hold", tmp_path) as listener:
        gateway, log, took = start_against(tmp_path, listener.port, {"CITADEL_QDRANT_TIMEOUT_SECONDS": "1"})
    assert SECRET not in log and "Traceback" not in log
    # Our own bound or gRPC's ("connection attempt timed out before receiving SETTINGS frame").
    assert "no answer in time" in log or "timed out" in log, log[-3000:]
    assert "is unavailable" in log and "check store.qdrant_url" in log
    assert took < 30
