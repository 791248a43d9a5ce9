"""The CLI's exit codes against gateways that refuse: authentication on, unreachable, too slow,
not ready. (Not found and bad input are checked with each command.)"""

from __future__ import annotations

import socket

import pytest

from tests.cli.conftest import citadel, unique
from tests.support.auth_config import token, write_config
from tests.support.gateway_process import GatewayProcess


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-auth")
    credentials = write_config(root / "citadel.toml")
    proc = GatewayProcess(root / "data", args=["--config", str(credentials.config_path)]).start()
    yield proc, credentials.keys
    proc.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unauthenticated_and_permission_denied(secured, tmp_path):
    proc, keys = secured
    target = proc.grpc_target

    anonymous = citadel("collections", "list", target=target)
    assert anonymous.code == 4
    assert anonymous.err.startswith("citadel: UNAUTHENTICATED: ")
    wrong_key = citadel("status", "--api-key", "ck_not-a-key", target=target)
    assert wrong_key.code == 4 and "UNAUTHENTICATED" in wrong_key.err
    expired = citadel("status", "--api-key", token("admin", expires_in=-60), target=target)
    assert expired.code == 4 and "UNAUTHENTICATED" in expired.err

    name = unique("auth")
    reader_create = citadel(
        "collections", "create", name, "--dimension", "3", "--api-key", keys["reader"], target=target
    )
    assert reader_create.code == 4
    assert reader_create.err.startswith("citadel: PERMISSION_DENIED: ")

    # The key from the environment, or from the flag (which wins).
    created = citadel(
        "collections",
        "create",
        name,
        "--dimension",
        "3",
        target=target,
        env={"CITADEL_API_KEY": keys["admin"]},
    )
    assert created.code == 0, created.err
    assert citadel("collections", "get", name, "--api-key", keys["reader"], target=target).code == 0
    flag_wins = citadel(
        "collections",
        "delete",
        name,
        "--api-key",
        keys["reader"],
        target=target,
        env={"CITADEL_API_KEY": keys["admin"]},
    )
    assert flag_wins.code == 4

    # Another tenant's collection is simply not there.
    other = citadel("collections", "get", name, "--api-key", keys["other-tenant"], target=target)
    assert other.code == 3

    # A reader may not ingest (UploadBatchJob needs a writer); a writer may.
    path = tmp_path / "points.jsonl"
    path.write_text('{"id": "a", "embedding": [1, 0, 0]}\n')
    assert citadel("ingest", str(path), "-c", name, "--api-key", keys["reader"], target=target).code == 4
    written = citadel("ingest", str(path), "-c", name, "--api-key", keys["writer"], target=target)
    assert written.code == 0, written.err
    assert "succeeded, 1 of 1 items written" in written.out
    # JWTs go in the same header.
    listed = citadel("jobs", "list", "--json", "--api-key", token("reader", tenant="acme"), target=target)
    assert listed.code == 0, listed.err
    assert [j["collection"] for j in listed.json()["jobs"]] == [name]


def test_unreachable_gateway():
    result = citadel("status", "--timeout", "3", target=f"127.0.0.1:{closed_port()}")
    assert result.code == 5
    assert result.err.startswith("citadel: UNAVAILABLE: ")


def test_deadline_exceeded(gateway):
    result = citadel("collections", "list", "--timeout", "0.000001", target=gateway.grpc_target)
    assert result.code == 5
    assert result.err == "citadel: DEADLINE_EXCEEDED: Deadline Exceeded\n"
    assert citadel("status", "--timeout", "0", target=gateway.grpc_target).code == 2


def test_status_optional_redis_down_is_degraded(tmp_path):
    """Redis configured but optional and unreachable: the gateway serves without it, ready, and
    says Redis is degraded. (Not ready, exit 5, naming the component: a required Redis killed,
    tests/lifecycle/test_dependency_status.py.)"""
    env = {"CITADEL_REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0", "CITADEL_REDIS_OPTIONAL": "true"}
    proc = GatewayProcess(tmp_path / "data", env=env).start()
    try:
        result = citadel("status", target=proc.grpc_target)
        assert result.code == 0, result
        assert ": ready, up " in result.out
        redis = next(line.split() for line in result.out.splitlines() if line.startswith("redis "))
        assert redis[1] == "degraded"
        doc = citadel("status", "--json", target=proc.grpc_target)
        assert doc.code == 0 and doc.json()["ready"] is True
    finally:
        proc.stop()


def test_usage_errors(gateway):
    target = gateway.grpc_target
    assert citadel("collections", target=target).code == 2
    assert citadel("search", "c", target=target).code == 2  # neither --vector nor --text
    assert citadel("no-such-command", target=target).code == 2
    help_text = citadel("--help", target=target)
    assert help_text.code == 0
    assert "exit codes:\n  0  ok\n  1  server error" in help_text.out
    assert "5  unavailable" in help_text.out
