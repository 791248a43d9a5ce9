"""Parity: every unary RPC of VectorService, derived from the descriptors, gives the same
result and the same error over gRPC, REST and GraphQL (status ↔ HTTP ↔ extensions.code).

Each protocol works on its own collection, seeded identically over gRPC; responses are
compared as messages after masking what legitimately differs between two calls (timestamps,
`*_ms` timings, and the collection names themselves).
"""

from __future__ import annotations

import uuid

import grpc
import pytest
from google.protobuf import json_format, timestamp_pb2

from citadel.adapters.errors import HTTP_STATUS
from citadel.server.methods import MethodSpec, method_specs
from citadel.vector.v1 import resources_pb2, vector_service_pb2
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.adapters.protocols import FD, Protocols

SERVICE = vector_service_pb2.DESCRIPTOR.services_by_name["VectorService"]
UNARY = [s for s in method_specs([SERVICE]) if not (s.server_streaming or s.client_streaming)]
PROTOCOLS = ("grpc", "rest", "graphql")

# A request (proto3 JSON) that succeeds; the test fills in the access policy's collection field.
EXAMPLES: dict[str, dict] = {
    "CreateCollection": {"collection": {"dimension": 4, "distance": "DISTANCE_DOT", "description": "parity"}},
    "GetCollection": {},
    "ListCollections": {"pageSize": 1000},
    "DeleteCollection": {},
    "InsertVector": {
        "vector": {"id": "v9", "embedding": [0.5, 0.5, 0, 0], "metadata": {"genre": "x", "year": 2001}}
    },
    "UpsertVectors": {
        "vectors": [{"id": "v8", "embedding": [0, 0, 1, 0]}, {"id": "v9", "embedding": [0, 0, 0, 1]}]
    },
    "GetVector": {"id": "dune"},
    "DeleteVectors": {"ids": {"ids": ["dune", "nothing"]}},
    "SearchVectors": {
        "queryVector": [1, 0.2, 0, 0],
        "limit": 3,
        "withEmbedding": True,
        "withMetadata": True,
        "filter": {"must": [{"field": {"key": "genre", "match": {"keyword": "scifi"}}}]},
    },
    "QueryVectors": {
        "nearest": {"vector": [1, 0.2, 0, 0]},
        "limit": 2,
        "withMetadata": True,
        "groupBy": {"key": "genre", "groupSize": 1},
    },
    "FacetVectors": {"key": "genre"},
    "ScrollVectors": {"pageSize": 5, "withEmbedding": True, "withMetadata": True},
    "CountVectors": {"filter": {"must": [{"field": {"key": "year", "range": {"gte": 1900}}}]}},
    "GenerateEmbedding": {"text": "hello parity", "normalize": True},
    "ListModels": {},
}
# Requests that fail: every protocol must fail the same way.
BAD: dict[str, dict] = {
    "CreateCollection": {"collection": {"dimension": 0, "distance": "DISTANCE_COSINE"}},
    "ListCollections": {"pageSize": 5000},
    "InsertVector": {"vector": {"id": "v1", "embedding": [1, 2]}},
    "UpsertVectors": {"vectors": [{"id": "", "embedding": [1, 0, 0, 0]}]},
    "GetVector": {"id": "missing"},
    "DeleteVectors": {},
    "SearchVectors": {"queryVector": [1, 2, 3]},
    "QueryVectors": {"recommend": {"positiveIds": ["nope"]}},
    "FacetVectors": {"key": ""},
    "ScrollVectors": {"pageToken": "not-a-token"},
    "CountVectors": {"filter": {"must": [{"field": {"key": ""}}]}},
    "GenerateEmbedding": {"text": "one", "model": "no-such-model"},
}
# RPCs whose example creates its collection, so it must not exist beforehand.
CREATES = {"CreateCollection"}


def name_of(spec: MethodSpec) -> str:
    return spec.name


@pytest.fixture(scope="module")
def protocols(echo_gateway, http) -> Protocols:
    return Protocols(echo_gateway.channel(), http)


def seed(stub, name: str) -> None:
    stub.CreateCollection(
        pb.CreateCollectionRequest(
            collection=resources_pb2.Collection(
                name=name, dimension=4, distance=resources_pb2.DISTANCE_COSINE
            )
        )
    )
    vectors = [("dune", [1, 0, 0, 0], "scifi", 1965), ("neuromancer", [0.9, 0.1, 0, 0], "scifi", 1984)]
    vectors += [("emma", [0, 1, 0, 0], "romance", 1815), ("dracula", [0, 0, 1, 0], "horror", 1897)]
    request = pb.UpsertVectorsRequest(collection=name)
    for vid, values, genre, year in vectors:
        v = request.vectors.add(id=vid, embedding=values)
        v.metadata.update({"genre": genre, "year": year})
    stub.UpsertVectors(request)


def build(spec: MethodSpec, example: dict, collection: str | None):
    request = spec.request_type()
    json_format.ParseDict(example, request)
    if collection is not None and spec.access.collection_field:
        *parents, leaf = spec.access.collection_field.split(".")
        target = request
        for part in parents:
            target = getattr(target, part)
        setattr(target, leaf, collection)
    return request


def masked(msg, names: set[str]):
    out = msg.__class__()
    out.CopyFrom(msg)
    _mask(out, names)
    return out


def _mask(msg, names: set[str]) -> None:
    for field, value in msg.ListFields():
        if field.message_type is not None and field.message_type.full_name == "google.protobuf.Timestamp":
            if not field.is_repeated:
                getattr(msg, field.name).CopyFrom(timestamp_pb2.Timestamp(seconds=1))
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            for item in value if field.is_repeated else [value]:
                _mask(item, names)
        elif field.cpp_type == FD.CPPTYPE_DOUBLE and field.name.endswith("_ms"):
            setattr(msg, field.name, 0)
        elif field.type == FD.TYPE_STRING and not field.is_repeated and value in names:
            setattr(msg, field.name, "<collection>")


def test_every_unary_rpc_has_examples():
    missing = [s.name for s in UNARY if s.name not in EXAMPLES]
    assert not missing, f"add a parity example for {missing}"


@pytest.mark.parametrize("spec", UNARY, ids=name_of)
def test_same_result_over_every_protocol(spec, protocols, echo_gateway):
    stub = echo_gateway.stub()
    names = {p: f"parity-{p}-{uuid.uuid4().hex[:8]}" for p in PROTOCOLS}
    if spec.access.collection_field and spec.name not in CREATES:
        for name in names.values():
            seed(stub, name)
    outcomes = {p: getattr(protocols, p)(spec, build(spec, EXAMPLES[spec.name], names[p])) for p in PROTOCOLS}
    for p, outcome in outcomes.items():
        assert outcome.code == grpc.StatusCode.OK, (
            f"{spec.name} over {p}: {outcome.code.name} {outcome.message}"
        )
    expected = masked(outcomes["grpc"].response, set(names.values()))
    for p in ("rest", "graphql"):
        assert masked(outcomes[p].response, set(names.values())) == expected, (
            f"{spec.name}: {p} differs from gRPC"
        )


ERROR_CASES = [(s, "bad") for s in UNARY if s.name in BAD] + [
    (s, "missing collection") for s in UNARY if s.access.collection_field and s.name not in CREATES
]


@pytest.mark.parametrize(("spec", "case"), ERROR_CASES, ids=lambda x: x if isinstance(x, str) else x.name)
def test_same_error_over_every_protocol(spec, case, protocols, echo_gateway):
    collection = f"parity-{uuid.uuid4().hex[:8]}"
    if case == "bad" and spec.access.collection_field and spec.name not in CREATES:
        seed(echo_gateway.stub(), collection)
    example = BAD[spec.name] if case == "bad" else EXAMPLES[spec.name]
    if case == "missing collection":
        collection = f"missing-{uuid.uuid4().hex[:8]}"
    request = build(spec, example, collection)
    grpc_outcome = protocols.grpc(spec, request)
    assert grpc_outcome.code != grpc.StatusCode.OK, f"{spec.name} {case} unexpectedly succeeded"
    for p in ("rest", "graphql"):
        outcome = getattr(protocols, p)(spec, request)
        assert (outcome.code, outcome.message) == (grpc_outcome.code, grpc_outcome.message), p
        assert outcome.http_status == HTTP_STATUS[grpc_outcome.code], p
