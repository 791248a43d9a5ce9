"""Status and readiness tell the truth about dependencies (issue 15, items 1, 3 and 4): a real
redis-server killed and restarted under a real gateway, read back through GetServiceStatus,
/readyz, `citadel status` and `citadel ingest`, and the gateway's log.

The issue asks for a change to show within 2 s; each wait polls up to 5 s (a loaded 2-core
machine) and prints the latency it observed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.error
import urllib.request

import pytest
import redis.asyncio as aioredis

from citadel.admin.v1 import admin_service_pb2 as admin
from citadel.admin.v1 import admin_service_pb2_grpc
from citadel.server import redis_client
from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as vector
from tests.cli.conftest import citadel
from tests.support.gateway_process import GatewayProcess

WITHIN_SECONDS = 5.0  # the 2 s, with room for a loaded machine


def components(proc: GatewayProcess) -> dict[str, admin.ComponentStatus]:
    reply = admin_service_pb2_grpc.AdminServiceStub(proc.channel()).GetServiceStatus(
        admin.GetServiceStatusRequest(), timeout=10
    )
    return {c.name: c for c in reply.components}


def readyz(proc: GatewayProcess) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{proc.http_url}/readyz", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def wait_for_state(
    proc: GatewayProcess, name: str, state: int, what: str
) -> tuple[float, admin.ComponentStatus]:
    """Seconds until component `name` is in `state` (fails after WITHIN_SECONDS), printed."""
    started = time.monotonic()
    while True:
        component = components(proc)[name]
        elapsed = time.monotonic() - started
        if component.state == state:
            print(f"{what}: {elapsed:.2f} s")
            return elapsed, component
        if elapsed > WITHIN_SECONDS:
            pytest.fail(
                f"{what}: {name} still {admin.ComponentState.Name(component.state)} after {elapsed:.1f} s"
            )
        time.sleep(0.05)


@pytest.fixture
def redis_gateway(redis_server, tmp_path):
    proc = GatewayProcess(
        tmp_path / "data", env={"CITADEL_REDIS_URL": redis_server.url, "CITADEL_ACCESS_LOG": "false"}
    ).start()
    yield proc
    proc.kill()


def test_redis_outage_unavailable_not_ready_then_running(redis_gateway, redis_server, tmp_path):
    proc = redis_gateway
    before = components(proc)
    assert before["redis"].state == admin.COMPONENT_STATE_RUNNING
    assert before["jobs"].state == admin.COMPONENT_STATE_RUNNING
    proc.stub().CreateCollection(
        vector.CreateCollectionRequest(
            collection=resources_pb2.Collection(
                name="outage", dimension=3, distance=resources_pb2.DISTANCE_COSINE
            )
        ),
        timeout=30,
    )
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps({"id": f"r{i}", "embedding": [1, i, 0]}) + "\n" for i in range(5)))

    redis_server.kill()
    _, redis = wait_for_state(proc, "redis", admin.COMPONENT_STATE_UNAVAILABLE, "Redis killed -> unavailable")
    # The admin view (no auth: a tenant-less admin) holds why, and since when.
    assert redis.last_error and redis.since.seconds >= before["redis"].since.seconds
    assert f"127.0.0.1:{redis_server.port}" in redis.last_error or "onnect" in redis.last_error
    jobs = components(proc)["jobs"]
    assert jobs.state == admin.COMPONENT_STATE_UNAVAILABLE and jobs.last_error.startswith("redis: ")
    code, body = readyz(proc)
    assert code == 503 and body["ready"] is False
    assert body["components"]["redis"] == "unavailable" and body["components"]["store"] == "running"
    with urllib.request.urlopen(f"{proc.http_url}/healthz", timeout=10) as r:
        assert r.status == 200  # liveness: the process serves
    metrics = urllib.request.urlopen(f"{proc.http_url}/metrics", timeout=10).read().decode()
    assert 'citadel_component_state{component="redis",state="unavailable"} 1.0' in metrics

    status = citadel("status", target=proc.grpc_target)
    assert status.code == 5 and "NOT READY" in status.out
    assert status.err == "citadel: not ready: redis, jobs\n"
    assert any(line.split()[:2] == ["redis", "unavailable"] for line in status.out.splitlines())

    ingest = citadel("ingest", str(records), "-c", "outage", "--no-wait", "--quiet", target=proc.grpc_target)
    assert ingest.code == 5, ingest
    assert ingest.err.startswith("citadel: UNAVAILABLE: job queue unavailable (Redis): "), ingest.err
    assert ingest.err.endswith("; retry later\n") and ingest.err.count("\n") == 1, ingest.err

    time.sleep(2.0)  # the batch workers' claim loops keep failing meanwhile
    redis_server.start()  # back on the same port
    wait_for_state(proc, "redis", admin.COMPONENT_STATE_RUNNING, "Redis restarted -> running")
    assert components(proc)["jobs"].state == admin.COMPONENT_STATE_RUNNING
    code, body = readyz(proc)
    assert code == 200 and body["ready"] is True
    assert citadel("status", target=proc.grpc_target).code == 0
    # The restarted Redis lost its data (consumer group included); batch work flows again.
    ingested = citadel("ingest", str(records), "-c", "outage", "--quiet", target=proc.grpc_target)
    assert ingested.code == 0, ingested

    log = proc.log()
    # One line when the outage starts and one when it ends, not one per failed check or poll.
    assert log.count("redis unavailable: ") == 1, log
    assert log.count("redis running again after ") == 1, log
    assert log.count("job queue (claiming batch work) unavailable: ") == 1, log
    assert log.count("job queue (claiming batch work) running again after ") == 1, log
    assert "claiming work failed" not in log and "Traceback" not in log
    outage_lines = [line for line in log.splitlines() if "unavailable" in line or "running again" in line]
    print(f"outage lines in the gateway log: {len(outage_lines)}")
    assert len(outage_lines) <= 8, outage_lines


def test_hung_redis_then_back_claim_loop_logs_two_lines(redis_gateway, redis_server, tmp_path):
    """SIGSTOP: Redis holds its connections but answers nothing (timeouts, not refusals); its
    data survives, so once it answers again batch work flows."""
    proc = redis_gateway
    proc.stub().CreateCollection(
        vector.CreateCollectionRequest(
            collection=resources_pb2.Collection(
                name="hung", dimension=3, distance=resources_pb2.DISTANCE_COSINE
            )
        ),
        timeout=30,
    )
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps({"id": f"h{i}", "embedding": [1, i, 0]}) + "\n" for i in range(5)))
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        _, redis = wait_for_state(
            proc, "redis", admin.COMPONENT_STATE_UNAVAILABLE, "Redis hung -> unavailable"
        )
        assert "imeout" in redis.last_error or "no answer" in redis.last_error, redis.last_error
        time.sleep(2.0)  # the claim loops keep failing meanwhile
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    wait_for_state(proc, "redis", admin.COMPONENT_STATE_RUNNING, "Redis answering again -> running")
    ingested = citadel("ingest", str(records), "-c", "hung", "--quiet", target=proc.grpc_target)
    assert ingested.code == 0, ingested
    log = proc.log()
    assert log.count("job queue (claiming batch work) unavailable: ") == 1, log
    assert log.count("job queue (claiming batch work) running again after ") == 1, log
    assert log.count("redis unavailable: ") == 1 and log.count("redis running again after ") == 1, log
    assert "Traceback" not in log


def test_optional_redis_outage_is_degraded_and_ready(redis_server, tmp_path):
    proc = GatewayProcess(
        tmp_path / "data",
        env={"CITADEL_REDIS_URL": redis_server.url, "CITADEL_REDIS_OPTIONAL": "true"},
    ).start()
    try:
        redis_server.kill()
        _, redis = wait_for_state(
            proc, "redis", admin.COMPONENT_STATE_DEGRADED, "optional Redis killed -> degraded"
        )
        assert redis.last_error
        code, body = readyz(proc)
        assert code == 200 and body["ready"] is True and body["components"]["redis"] == "degraded"
        status = citadel("status", target=proc.grpc_target)
        assert status.code == 0 and ": ready, up " in status.out
        redis_server.start()
        wait_for_state(proc, "redis", admin.COMPONENT_STATE_RUNNING, "optional Redis restarted -> running")
    finally:
        proc.kill()


def test_engine_in_use_is_shown(gateway):
    store = components(gateway)["store"]
    assert store.detail.startswith("edge engine in "), store.detail  # settings say "auto"
    assert "auto" not in store.detail
    assert "vector store: edge in " in gateway.log()
    out = citadel("status", target=gateway.grpc_target).out
    assert "edge engine in" in out and "auto engine" not in out


def test_redis_errors_are_signalled_by_the_connection_that_saw_them(redis_server):
    """The passive signal: an idle pub/sub subscription (as the job queue's) is no error; a
    command against a killed Redis is, told at once."""

    async def scenario() -> list[BaseException]:
        seen: list[BaseException] = []
        signal = redis_client.ErrorSignal()
        signal.listener = seen.append
        client: aioredis.Redis = await redis_client.connect(redis_server.url, signal)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe("citadel-test")
            messages = pubsub.listen()  # as the job queue's progress listener reads
            assert (await anext(messages))["type"] == "subscribe"
            with pytest.raises(TimeoutError):  # idle for three socket timeouts: nothing comes
                await asyncio.wait_for(anext(messages), 1.5)
            assert seen == []
            redis_server.kill()
            with pytest.raises(redis_client.OUTAGE_ERRORS):
                await client.ping()
            return seen
        finally:
            await pubsub.aclose()
            await client.aclose()

    seen = asyncio.run(scenario())
    assert seen and all(isinstance(e, redis_client.OUTAGE_ERRORS) for e in seen)
