"""A Redis outage under the job queue is UNAVAILABLE everywhere it shows: the reply, the
metrics and access log (which used to say INTERNAL), and a watch stream that was already
running when Redis went away (which used to end UNKNOWN)."""

from __future__ import annotations

import json
import time

import grpc
import httpx
import pytest

from citadel.batch.v1 import batch_service_pb2 as batch
from tests.jobs.conftest import jobs_stub, make_collection
from tests.models.conftest import Servers, backend, write_config
from tests.support.gateway_process import GatewayProcess


@pytest.fixture
def slow_model(tmp_path_factory):
    pool = Servers(tmp_path_factory)
    yield pool("slow", delay_ms=2000)
    pool.close()


@pytest.fixture
def slow_gateway(redis_server, slow_model, tmp_path):
    """Jobs that take a while (a model server answering each call after 2 s), queued in Redis."""
    slow = slow_model
    models = {"general": {"pattern": "realtime", "backends": [backend(slow, max_batch=4)]}}
    config = write_config(tmp_path / "citadel.toml", models)
    proc = GatewayProcess(
        tmp_path / "data",
        env={"CITADEL_REDIS_URL": redis_server.url},
        args=["--insecure-no-auth", "--config", str(config)],
    ).start()
    yield proc
    proc.kill()


def test_outage_is_unavailable_in_replies_metrics_logs_and_running_streams(slow_gateway, redis_server):
    make_collection(slow_gateway, "notes")
    items = [batch.BatchItem(id=f"n{i}", text=f"note {i}") for i in range(40)]
    request = batch.SubmitBatchJobRequest(
        collection="notes", operation=batch.OPERATION_BULK_EMBED_UPSERT, items=items
    )
    job = jobs_stub(slow_gateway).SubmitBatchJob(request, timeout=30).job
    watch = jobs_stub(slow_gateway).WatchBatchJob(batch.WatchBatchJobRequest(id=job.id), timeout=60)
    assert next(watch).job.id == job.id  # the stream is running

    redis_server.kill()
    with pytest.raises(grpc.RpcError) as refused:
        jobs_stub(slow_gateway).SubmitBatchJob(request, timeout=30)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "job queue unavailable (Redis)" in refused.value.details()

    with pytest.raises(grpc.RpcError) as ended:
        list(watch)  # ends when its next re-read of the job meets the outage
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE, ended.value.details()

    metrics = httpx.get(f"{slow_gateway.http_url}/metrics", timeout=30).text
    submit = [line for line in metrics.splitlines() if "SubmitBatchJob" in line and "requests_total" in line]
    assert any('code="UNAVAILABLE"' in line for line in submit), submit
    assert not any('code="INTERNAL"' in line for line in submit), submit
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        calls = [json.loads(line) for line in slow_gateway.log().splitlines() if '"msg": "call"' in line]
        codes = {c.get("code") for c in calls if c.get("method", "").endswith("SubmitBatchJob")}
        if "UNAVAILABLE" in codes:
            break
        time.sleep(0.1)
    assert "UNAVAILABLE" in codes and "INTERNAL" not in codes, codes
