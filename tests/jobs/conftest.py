"""Helpers for batch job tests: submitting, waiting, reading a collection back."""

from __future__ import annotations

import time

import pytest

from citadel.batch.v1 import batch_service_pb2 as batch
from citadel.batch.v1 import batch_service_pb2_grpc
from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb

TOPICS = ["rivers", "compilers", "bread", "glaciers", "chess", "violins", "tides", "moths", "bridges", "tea"]
# Short leases so a killed worker's chunks come back within seconds.
FAST_LEASE = {"CITADEL_JOBS_LEASE_SECONDS": "3", "CITADEL_ACCESS_LOG": "false"}


def text_of(i: int) -> str:
    return f"Note {i}: a few words about {TOPICS[i % len(TOPICS)]} and item number {i * 7 % 1000}."


def jobs_stub(proc) -> batch_service_pb2_grpc.BatchServiceStub:
    return batch_service_pb2_grpc.BatchServiceStub(proc.channel())


def make_collection(proc, name: str, dim: int = 384) -> None:
    proc.stub().CreateCollection(
        pb.CreateCollectionRequest(collection=resources_pb2.Collection(name=name, dimension=dim, distance=1))
    )


def submit_texts(proc, collection: str, n: int, key: str = "") -> batch.BatchJob:
    items = [batch.BatchItem(id=f"doc-{i}", text=text_of(i)) for i in range(n)]
    reply = jobs_stub(proc).SubmitBatchJob(
        batch.SubmitBatchJobRequest(
            collection=collection,
            operation=batch.OPERATION_BULK_EMBED_UPSERT,
            items=items,
            idempotency_key=key,
        ),
        timeout=60,
    )
    return reply.job


def get_job(proc, job_id: str) -> batch.BatchJob:
    return jobs_stub(proc).GetBatchJob(batch.GetBatchJobRequest(id=job_id), timeout=10).job


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


TERMINAL = {
    batch.JOB_STATE_SUCCEEDED,
    batch.JOB_STATE_FAILED,
    batch.JOB_STATE_CANCELLED,
    batch.JOB_STATE_PARTIALLY_FAILED,
}


def wait_terminal(proc, job_id: str, timeout: float = 120) -> batch.BatchJob:
    return wait_until(
        lambda: (j := get_job(proc, job_id)).state in TERMINAL and j, timeout, f"job {job_id} to end"
    )


def all_ids(proc, collection: str) -> list[str]:
    ids, token = [], ""
    while True:
        page = proc.stub().ScrollVectors(
            pb.ScrollVectorsRequest(collection=collection, page_size=1000, page_token=token), timeout=60
        )
        ids += [v.id for v in page.vectors]
        token = page.next_page_token
        if not token:
            return ids
