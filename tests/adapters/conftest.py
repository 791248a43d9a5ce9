"""Fixtures for the adapter tests: one gateway process serving VectorService and the
test-only EchoService, with an HTTP client and gRPC access to both."""

from __future__ import annotations

import httpx
import pytest

from tests.support.gateway_process import GatewayProcess

# Small enough that the 413 test need not send much, large enough for every other test.
MAX_MESSAGE_BYTES = 1 << 20


class EchoGatewayProcess(GatewayProcess):
    module = "tests.adapters.echo_server"


@pytest.fixture(scope="session")
def echo_gateway(tmp_path_factory) -> EchoGatewayProcess:
    proc = EchoGatewayProcess(
        tmp_path_factory.mktemp("echo-gateway") / "data",
        env={
            "CITADEL_MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES),
            "CITADEL_REST_BODY_BYTES": str(MAX_MESSAGE_BYTES),
            "CITADEL_LOG_LEVEL": "WARNING",
        },
    )
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def http(echo_gateway) -> httpx.Client:
    with httpx.Client(base_url=echo_gateway.http_url, timeout=30.0) as client:
        yield client
