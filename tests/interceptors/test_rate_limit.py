"""Rate limits: one budget per key, shared by two gateway processes through one Redis."""

from __future__ import annotations

import grpc
import pytest

from citadel.vector.v1 import vector_service_pb2 as pb
from tests.support.auth_config import write_config
from tests.support.gateway_process import GatewayProcess

LIMITS = """
[rate_limits.buckets]
"key:reader" = {rate = 0.2, burst = 6}
"tenant:globex" = {rate = 0.2, burst = 3}
"""


def outcomes(stubs, metadata, n: int) -> tuple[int, list[grpc.RpcError]]:
    ok, refused = 0, []
    for i in range(n):
        try:
            stubs[i % len(stubs)].ListCollections(pb.ListCollectionsRequest(), metadata=metadata, timeout=10)
            ok += 1
        except grpc.RpcError as e:
            refused.append(e)
    return ok, refused


@pytest.fixture
def two_gateways(redis_server, tmp_path):
    creds = write_config(tmp_path / "citadel.toml", extra=LIMITS)
    env = {"CITADEL_REDIS_URL": redis_server.url}
    args = ["--config", str(creds.config_path)]
    procs = [GatewayProcess(tmp_path / f"data{i}", env=env, args=args).start() for i in range(2)]
    yield procs, creds
    for p in procs:
        p.kill()


def test_two_replicas_share_one_budget(two_gateways):
    procs, creds = two_gateways
    stubs = [p.stub() for p in procs]
    ok, refused = outcomes(stubs, creds.bearer("reader"), 12)
    # burst 6 across both replicas (a refill of 0.2/s may add one during the run)
    assert 6 <= ok <= 7, ok
    assert refused and all(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in refused)
    first = refused[0]
    assert "rate limit of key:reader exceeded" in first.details()
    assert int(dict(first.trailing_metadata())["retry-after"]) >= 1
    # another key is not affected
    ok_writer, _ = outcomes(stubs, creds.bearer("writer"), 4)
    assert ok_writer == 4


def test_tenant_budget_applies_across_keys(two_gateways):
    procs, creds = two_gateways
    ok, refused = outcomes([p.stub() for p in procs], creds.bearer("other-tenant"), 6)
    assert 3 <= ok <= 4 and refused
    assert "tenant:globex" in refused[0].details()


def test_in_process_limits_without_redis(tmp_path):
    creds = write_config(tmp_path / "citadel.toml", extra=LIMITS)
    proc = GatewayProcess(tmp_path / "data", args=["--config", str(creds.config_path)]).start()
    try:
        ok, refused = outcomes([proc.stub()], creds.bearer("reader"), 9)
        assert 6 <= ok <= 7 and refused
    finally:
        proc.kill()
