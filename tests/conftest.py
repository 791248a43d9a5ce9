"""Shared fixtures: real gateway processes on loopback, system dependencies, CI strictness."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.support.gateway_process import GatewayProcess
from tests.support.redis_server import RedisServer

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_binary(name: str, install_hint: str) -> str:
    """Path of a system binary; skips with how to install it, but fails under CI=true."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found; install it with: {install_hint}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def gateway(tmp_path_factory) -> GatewayProcess:
    """One gateway on the embedded default shared by a test session (tests use unique
    collection names so they do not interfere)."""
    proc = GatewayProcess(tmp_path_factory.mktemp("gateway") / "data").start()
    yield proc
    proc.stop()


@pytest.fixture
def stub(gateway):
    return gateway.stub()


@pytest.fixture
def fresh_gateway(tmp_path) -> GatewayProcess:
    """A gateway of its own, for tests that restart or kill it."""
    proc = GatewayProcess(tmp_path / "data").start()
    yield proc
    proc.kill()


@pytest.fixture
def redis_server(tmp_path) -> RedisServer:
    """A real redis-server on a free port, killed after the test."""
    server = RedisServer(
        require_binary("redis-server", "apt-get install -y redis-server"), tmp_path / "redis"
    ).start()
    yield server
    server.kill()
