"""Batch jobs against real gateway processes: per-item errors, watch, idempotency, cancel."""

from __future__ import annotations

import time
import uuid

import grpc
import pytest

from citadel.batch.v1 import batch_service_pb2 as batch
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.jobs.conftest import (
    FAST_LEASE,
    all_ids,
    get_job,
    jobs_stub,
    make_collection,
    submit_texts,
    wait_terminal,
    wait_until,
)
from tests.support.gateway_process import GatewayProcess


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    proc = GatewayProcess(tmp_path_factory.mktemp("jobs") / "data", env=FAST_LEASE).start()
    yield proc
    proc.stop()


def unique() -> str:
    return f"jobs-{uuid.uuid4().hex[:8]}"


def test_bad_items_fail_alone(gw):
    name = unique()
    make_collection(gw, name, dim=3)
    items = [
        batch.BatchItem(id="good-1", embedding=[1, 0, 0]),
        batch.BatchItem(id="short", embedding=[1, 0]),
        batch.BatchItem(id="", embedding=[1, 0, 0]),
        batch.BatchItem(id="nan", embedding=[1, float("nan"), 0]),
        batch.BatchItem(id="none"),
        batch.BatchItem(id="good-2", embedding=[0, 1, 0]),
    ]
    job = (
        jobs_stub(gw)
        .SubmitBatchJob(
            batch.SubmitBatchJobRequest(collection=name, operation=batch.OPERATION_BULK_UPSERT, items=items)
        )
        .job
    )
    job = wait_terminal(gw, job.id)
    assert job.state == batch.JOB_STATE_PARTIALLY_FAILED
    assert (job.total, job.done, job.failed) == (6, 2, 4)
    errors = {e.item_id: e.message for e in job.errors}
    assert "has 2 values" in errors["short"]
    assert errors[""] == "id: is required"
    assert "embedding[1]" in errors["nan"]
    assert errors["none"] == "embedding: is required"
    assert sorted(all_ids(gw, name)) == ["good-1", "good-2"]


def test_embed_upsert_and_watch_to_the_end(gw):
    name = unique()
    make_collection(gw, name)
    job = submit_texts(gw, name, 250)
    events = list(jobs_stub(gw).WatchBatchJob(batch.WatchBatchJobRequest(id=job.id), timeout=120))
    assert events[-1].job.state == batch.JOB_STATE_SUCCEEDED
    done = [e.job.done for e in events]
    assert done == sorted(done) and done[-1] == 250
    assert events[-1].job.items_per_second > 0
    assert len(set(all_ids(gw, name))) == 250


def test_submission_errors(gw):
    stub = jobs_stub(gw)
    cases = [
        (
            batch.SubmitBatchJobRequest(
                collection="nope-missing", operation=1, items=[batch.BatchItem(id="a", text="t")]
            ),
            grpc.StatusCode.NOT_FOUND,
            "nope-missing",
        ),
        (
            batch.SubmitBatchJobRequest(collection="x", items=[batch.BatchItem(id="a", text="t")]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "operation",
        ),
        (batch.SubmitBatchJobRequest(collection="x", operation=1), grpc.StatusCode.INVALID_ARGUMENT, "items"),
        (
            batch.SubmitBatchJobRequest(
                collection="x", operation=3, items=[batch.BatchItem(id="a", text="t")]
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "collection",
        ),
    ]
    for request, code, fragment in cases:
        with pytest.raises(grpc.RpcError) as e:
            stub.SubmitBatchJob(request)
        assert e.value.code() == code and fragment in e.value.details(), e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        stub.GetBatchJob(batch.GetBatchJobRequest(id="no-such-job"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_idempotency_key_returns_the_existing_job(gw):
    name = unique()
    make_collection(gw, name)
    first = submit_texts(gw, name, 20, key="import-2026-11-23")
    again = jobs_stub(gw).SubmitBatchJob(
        batch.SubmitBatchJobRequest(
            collection=name,
            operation=batch.OPERATION_BULK_EMBED_UPSERT,
            items=[batch.BatchItem(id="other", text="different")],
            idempotency_key="import-2026-11-23",
        )
    )
    assert again.existing and again.job.id == first.id and again.job.total == 20
    wait_terminal(gw, first.id)
    assert "other" not in all_ids(gw, name)


def test_upload_stream_and_embed_job(gw):
    name = unique()
    make_collection(gw, name, dim=2)

    def messages():
        yield batch.UploadBatchJobRequest(
            header=batch.UploadBatchJobHeader(collection=name, operation=batch.OPERATION_BULK_UPSERT)
        )
        for start in range(0, 300, 100):
            yield batch.UploadBatchJobRequest(
                items=batch.BatchItemList(
                    items=[batch.BatchItem(id=f"u{i}", embedding=[1, i]) for i in range(start, start + 100)]
                )
            )

    job = jobs_stub(gw).UploadBatchJob(messages()).job
    assert wait_terminal(gw, job.id).done == 300

    embed = (
        jobs_stub(gw)
        .SubmitBatchJob(
            batch.SubmitBatchJobRequest(
                operation=batch.OPERATION_EMBED,
                items=[batch.BatchItem(id=str(i), text=f"text {i}") for i in range(5)],
                normalize=True,
            )
        )
        .job
    )
    done = wait_terminal(gw, embed.id)
    assert done.normalize
    assert [e.item_id for e in done.embeddings] == ["0", "1", "2", "3", "4"]
    assert all(len(e.values) == 384 for e in done.embeddings)


def test_list_jobs_by_state_and_pages(gw):
    name = unique()
    make_collection(gw, name)
    ids = [submit_texts(gw, name, 3).id for _ in range(3)]
    for job_id in ids:
        wait_terminal(gw, job_id)
    stub = jobs_stub(gw)
    seen, token = [], ""
    while True:
        page = stub.ListBatchJobs(
            batch.ListBatchJobsRequest(page_size=2, page_token=token, state=batch.JOB_STATE_SUCCEEDED)
        )
        seen += [j.id for j in page.jobs]
        token = page.next_page_token
        if not token:
            break
    assert set(ids) <= set(seen)
    assert seen.index(ids[2]) < seen.index(ids[0])  # newest first


@pytest.mark.parametrize(
    "token", [":", "MDA", "MDAxMTIyMzM0NA", "eno"], ids=["empty", "1-byte", "5-bytes", "not-hex"]
)
def test_list_jobs_page_token_that_is_not_ours(gw, token):
    """Tokens that decode to something other than the 8 bytes of a position are the caller's
    error (a token decoding to too few bytes was once an unhandled struct.error: INTERNAL)."""
    with pytest.raises(grpc.RpcError) as e:
        jobs_stub(gw).ListBatchJobs(batch.ListBatchJobsRequest(page_token=token))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details() == "page_token: not a token from a previous response"


def test_cancel_stops_within_one_chunk(gw):
    name = unique()
    make_collection(gw, name)
    job = submit_texts(gw, name, 2000)
    wait_until(lambda: get_job(gw, job.id).done >= 100, 60, "first chunks")
    cancelled = jobs_stub(gw).CancelBatchJob(batch.CancelBatchJobRequest(id=job.id)).job
    assert cancelled.state == batch.JOB_STATE_CANCELLED
    at_cancel = cancelled.done
    time.sleep(3)  # chunks in flight may finish; no new one starts
    final = get_job(gw, job.id)
    assert final.state == batch.JOB_STATE_CANCELLED
    workers, chunk = 3, 100
    assert final.done <= at_cancel + workers * chunk, (at_cancel, final.done)
    assert final.done < 2000


def test_job_writes_invalidate_cached_reads(gw):
    """Reads cached before a job must not be served after it: workers bump the version too."""
    name = unique()
    make_collection(gw, name)
    count = pb.CountVectorsRequest(collection=name)
    assert gw.stub().CountVectors(count).count == 0  # now cached
    wait_terminal(gw, submit_texts(gw, name, 120).id)
    assert gw.stub().CountVectors(count).count == 120
    assert gw.stub().GetCollection(pb.GetCollectionRequest(name=name)).collection.vector_count == 120
