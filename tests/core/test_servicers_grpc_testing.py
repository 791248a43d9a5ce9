"""VectorService's servicer driven in process, without sockets: the servicer over a real
embedded store (qdrant-edge in a temporary directory), called through the real Chain with the
protocol-neutral Call, as the gRPC, REST and GraphQL adapters call it.

Why not grpc_testing's server: it calls `servicer.Method(request, context)` synchronously and
takes the return value as the response, while Citadel's servicers are `async def Method(self,
request, call)` taking a `Call`, and the gRPC handlers that adapt them (server/grpc_server.py
`method_handler`) are grpc.aio handlers, which grpc_testing never consults. Hosting them there
would take an adapter written for the test, running neither the real handler nor the servicer
as served; the SDK side of grpc_testing is used in tests/sdk/test_client_grpc_testing.py."""

from __future__ import annotations

import grpc
import pytest
import pytest_asyncio
from google.protobuf import struct_pb2

from citadel.server.chain import Call, Chain
from citadel.server.descriptors import SERVICES
from citadel.server.errors import ApiError
from citadel.server.methods import method_specs
from citadel.server.servicers.vector import VectorServicer
from citadel.server.store.edge import EdgeStore
from citadel.vector.v1 import filter_pb2, resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb

SPECS = {
    spec.name: spec for spec in method_specs(SERVICES) if spec.service == "citadel.vector.v1.VectorService"
}


class Vectors:
    """Calls VectorService methods through the chain, as an adapter does."""

    def __init__(self, chain: Chain) -> None:
        self._chain = chain

    async def __call__(self, method: str, request):
        spec = SPECS[method]
        return await self._chain.handler_for(spec)(Call(method=spec, protocol="grpc"), request)


@pytest_asyncio.fixture
async def vectors(tmp_path):
    store = EdgeStore(tmp_path / "edge")
    # No model router: these tests send no texts to embed (GenerateEmbedding, query_text).
    servicer = VectorServicer(store, embeddings=None, max_upsert_vectors=5)
    try:
        yield Vectors(Chain([], {"citadel.vector.v1.VectorService": servicer}))
    finally:
        await store.close()


def meta(**values) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(values)
    return s


async def films(vectors: Vectors, name: str = "films") -> str:
    await vectors(
        "CreateCollection",
        pb.CreateCollectionRequest(
            collection=resources_pb2.Collection(
                name=name, dimension=3, distance=resources_pb2.DISTANCE_COSINE
            )
        ),
    )
    await vectors(
        "UpsertVectors",
        pb.UpsertVectorsRequest(
            collection=name,
            vectors=[
                resources_pb2.Vector(id="dune", embedding=[1, 0, 0], metadata=meta(year=1965, genre="scifi")),
                resources_pb2.Vector(
                    id="emma", embedding=[0, 1, 0], metadata=meta(year=1815, genre="romance")
                ),
                resources_pb2.Vector(
                    id="alien", embedding=[0.9, 0.1, 0], metadata=meta(year=1979, genre="scifi")
                ),
            ],
        ),
    )
    return name


def year_below(limit: float) -> filter_pb2.Filter:
    f = filter_pb2.Filter()
    f.must.add().field.CopyFrom(filter_pb2.FieldCondition(key="year", range=filter_pb2.Range(lt=limit)))
    return f


@pytest.mark.asyncio
async def test_collection_and_vector_lifecycle(vectors):
    name = await films(vectors)
    got = (await vectors("GetCollection", pb.GetCollectionRequest(name=name))).collection
    assert (got.name, got.dimension, got.distance, got.vector_count) == (
        name,
        3,
        resources_pb2.DISTANCE_COSINE,
        3,
    )
    assert got.HasField("created_at")

    listed = await vectors("ListCollections", pb.ListCollectionsRequest())
    assert [c.name for c in listed.collections] == [name]

    hits = (
        await vectors(
            "SearchVectors",
            pb.SearchVectorsRequest(collection=name, query_vector=[1, 0, 0], limit=2, with_metadata=True),
        )
    ).results
    assert [h.id for h in hits] == ["dune", "alien"]
    assert hits[0].score == pytest.approx(1.0) and dict(hits[0].metadata) == {"year": 1965, "genre": "scifi"}

    filtered = await vectors(
        "SearchVectors",
        pb.SearchVectorsRequest(collection=name, query_vector=[1, 0, 0], filter=year_below(1900)),
    )
    assert [h.id for h in filtered.results] == ["emma"]

    count = await vectors("CountVectors", pb.CountVectorsRequest(collection=name, filter=year_below(1970)))
    assert count.count == 2

    one = (await vectors("GetVector", pb.GetVectorRequest(collection=name, id="alien"))).vector
    norm = (0.9**2 + 0.1**2) ** 0.5  # a cosine collection keeps vectors normalised, as Qdrant does
    assert one.id == "alien" and list(one.embedding) == pytest.approx([0.9 / norm, 0.1 / norm, 0], rel=1e-6)

    deleted = await vectors(
        "DeleteVectors", pb.DeleteVectorsRequest(collection=name, ids=pb.VectorIds(ids=["alien", "emma"]))
    )
    assert deleted.deleted_count == 2
    scrolled = await vectors("ScrollVectors", pb.ScrollVectorsRequest(collection=name, page_size=10))
    assert [v.id for v in scrolled.vectors] == ["dune"]

    await vectors("DeleteCollection", pb.DeleteCollectionRequest(name=name))
    with pytest.raises(ApiError) as gone:
        await vectors("GetCollection", pb.GetCollectionRequest(name=name))
    assert gone.value.code is grpc.StatusCode.NOT_FOUND
    assert gone.value.message == f"collection {name!r} not found"


@pytest.mark.asyncio
async def test_an_upsert_invalid_in_part_writes_nothing(vectors):
    name = await films(vectors)
    bad = pb.UpsertVectorsRequest(
        collection=name,
        vectors=[
            resources_pb2.Vector(id="new", embedding=[0, 0, 1]),
            resources_pb2.Vector(id="short", embedding=[0, 1]),
        ],
    )
    with pytest.raises(ApiError) as refused:
        await vectors("UpsertVectors", bad)
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.message.startswith("vectors[1].embedding: ")
    count = await vectors("CountVectors", pb.CountVectorsRequest(collection=name))
    assert count.count == 3


def collection(name="c", dimension=3, distance=resources_pb2.DISTANCE_COSINE):
    return pb.CreateCollectionRequest(
        collection=resources_pb2.Collection(name=name, dimension=dimension, distance=distance)
    )


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("method", "request_", "code", "message"),
    [
        (
            "CreateCollection",
            collection(dimension=0),
            "INVALID_ARGUMENT",
            "collection.dimension: must be between 1 and",
        ),
        (
            "CreateCollection",
            collection(distance=0),
            "INVALID_ARGUMENT",
            "collection.distance: must be one of",
        ),
        ("CreateCollection", collection(name=""), "INVALID_ARGUMENT", "collection.name: "),
        ("CreateCollection", collection(name="films"), "ALREADY_EXISTS", "collection 'films' already exists"),
        ("GetCollection", pb.GetCollectionRequest(name="nope"), "NOT_FOUND", "collection 'nope' not found"),
        (
            "GetVector",
            pb.GetVectorRequest(collection="films", id="nope"),
            "NOT_FOUND",
            "vector 'nope' in collection 'films'",
        ),
        (
            "UpsertVectors",
            pb.UpsertVectorsRequest(collection="films"),
            "INVALID_ARGUMENT",
            "vectors: must hold at least one vector",
        ),
        (
            "UpsertVectors",
            pb.UpsertVectorsRequest(
                collection="films",
                vectors=[resources_pb2.Vector(id=str(i), embedding=[1, 0, 0]) for i in range(6)],
            ),
            "INVALID_ARGUMENT",
            "vectors: has 6 vectors; limits.vectors_per_upsert is 5",
        ),
        (
            "UpsertVectors",
            pb.UpsertVectorsRequest(
                collection="films",
                vectors=[
                    resources_pb2.Vector(id="a", embedding=[1, 0, 0]),
                    resources_pb2.Vector(id="a", embedding=[0, 1, 0]),
                ],
            ),
            "INVALID_ARGUMENT",
            "vectors[1].id: 'a' repeats vectors[0].id",
        ),
        (
            "InsertVector",
            pb.InsertVectorRequest(collection="films"),
            "INVALID_ARGUMENT",
            "vector: is required",
        ),
        (
            "SearchVectors",
            pb.SearchVectorsRequest(collection="films", query_vector=[1, 0]),
            "INVALID_ARGUMENT",
            "query_vector: has 2 values but collection 'films' has dimension 3",
        ),
        (
            "SearchVectors",
            pb.SearchVectorsRequest(collection="nope", query_vector=[1, 0, 0]),
            "NOT_FOUND",
            "collection 'nope' not found",
        ),
    ],
)
async def test_refusals_name_the_field(vectors, method, request_, code, message):
    await films(vectors)
    with pytest.raises(ApiError) as refused:
        await vectors(method, request_)
    assert refused.value.code is getattr(grpc.StatusCode, code)
    assert refused.value.message.startswith(message)
