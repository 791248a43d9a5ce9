"""VectorService over gRPC against a real gateway process on the embedded default."""

from __future__ import annotations

import math
import uuid

import grpc
import pytest
from google.protobuf import struct_pb2

from citadel.vector.v1 import filter_pb2, resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb

DIM = 4


def unique(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def metadata(**values) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(values)
    return s


def make_collection(
    stub, name: str | None = None, dim: int = DIM, distance=resources_pb2.DISTANCE_COSINE
) -> str:
    name = name or unique()
    stub.CreateCollection(
        pb.CreateCollectionRequest(
            collection=resources_pb2.Collection(name=name, dimension=dim, distance=distance)
        )
    )
    return name


def vec(id: str, values, **meta) -> resources_pb2.Vector:
    return resources_pb2.Vector(id=id, embedding=values, metadata=metadata(**meta))


def status_of(excinfo) -> tuple[grpc.StatusCode, str]:
    return excinfo.value.code(), excinfo.value.details()


@pytest.fixture
def books(stub) -> str:
    """A collection with four vectors and metadata to filter on."""
    name = make_collection(stub)
    stub.UpsertVectors(
        pb.UpsertVectorsRequest(
            collection=name,
            vectors=[
                vec("dune", [1, 0, 0, 0], genre="scifi", year=1965, tags=["classic"]),
                vec("neuromancer", [0.9, 0.1, 0, 0], genre="scifi", year=1984),
                vec("emma", [0, 1, 0, 0], genre="romance", year=1815),
                vec("dracula", [0, 0, 1, 0], genre="horror", year=1897),
            ],
        )
    )
    return name


# -- happy paths: every RPC ------------------------------------------------------------------


def test_create_get_list_delete_collection(stub):
    name = unique()
    created = stub.CreateCollection(
        pb.CreateCollectionRequest(
            collection=resources_pb2.Collection(
                name=name,
                dimension=DIM,
                distance=resources_pb2.DISTANCE_DOT,
                description="for tests",
                indexed_fields=[
                    resources_pb2.IndexedField(key="genre", type=resources_pb2.FIELD_TYPE_KEYWORD)
                ],
            )
        )
    ).collection
    assert (created.name, created.dimension, created.distance) == (name, DIM, resources_pb2.DISTANCE_DOT)
    assert created.created_at.seconds > 0

    got = stub.GetCollection(pb.GetCollectionRequest(name=name)).collection
    assert got.description == "for tests"
    assert got.vector_count == 0
    assert [f.key for f in got.indexed_fields] == ["genre"]

    names = [c.name for c in stub.ListCollections(pb.ListCollectionsRequest(page_size=1000)).collections]
    assert name in names and names == sorted(names)

    assert stub.DeleteCollection(pb.DeleteCollectionRequest(name=name)).name == name
    with pytest.raises(grpc.RpcError) as e:
        stub.GetCollection(pb.GetCollectionRequest(name=name))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_list_collections_pages_through_all(stub):
    prefix = unique("page")
    made = sorted(make_collection(stub, f"{prefix}-{i}") for i in range(5))
    seen, token = [], ""
    while True:
        page = stub.ListCollections(pb.ListCollectionsRequest(page_size=2, page_token=token))
        assert len(page.collections) <= 2
        seen += [c.name for c in page.collections]
        token = page.next_page_token
        if not token:
            break
    assert [n for n in seen if n.startswith(prefix)] == made
    assert seen == sorted(seen)


def test_insert_then_get_vector(stub):
    name = make_collection(stub, distance=resources_pb2.DISTANCE_EUCLID)
    inserted = stub.InsertVector(
        pb.InsertVectorRequest(collection=name, vector=vec("doc/1 with spaces", [1, 2, 3, 4], lang="en", n=3))
    ).vector
    assert inserted.id == "doc/1 with spaces"
    got = stub.GetVector(pb.GetVectorRequest(collection=name, id="doc/1 with spaces")).vector
    assert list(got.embedding) == [1, 2, 3, 4]
    assert dict(got.metadata) == {"lang": "en", "n": 3}
    assert got.collection == name
    assert got.created_at.seconds > 0


def test_upsert_replaces_existing_id(stub):
    name = make_collection(stub, distance=resources_pb2.DISTANCE_EUCLID)
    stub.UpsertVectors(pb.UpsertVectorsRequest(collection=name, vectors=[vec("a", [1, 1, 1, 1], v=1)]))
    stub.UpsertVectors(pb.UpsertVectorsRequest(collection=name, vectors=[vec("a", [2, 2, 2, 2], v=2)]))
    assert stub.CountVectors(pb.CountVectorsRequest(collection=name)).count == 1
    got = stub.GetVector(pb.GetVectorRequest(collection=name, id="a")).vector
    assert list(got.embedding) == [2, 2, 2, 2] and got.metadata["v"] == 2


def test_search_ranks_by_similarity(stub, books):
    r = stub.SearchVectors(
        pb.SearchVectorsRequest(collection=books, query_vector=[1, 0.05, 0, 0], limit=2, with_metadata=True)
    )
    assert [h.id for h in r.results] == ["dune", "neuromancer"]
    assert r.results[0].score > r.results[1].score
    assert r.results[0].metadata["genre"] == "scifi"
    assert not r.results[0].embedding  # not asked for
    assert r.query_time_ms > 0


def test_search_with_embedding_offset_and_threshold(stub, books):
    r = stub.SearchVectors(
        pb.SearchVectorsRequest(
            collection=books, query_vector=[1, 0, 0, 0], limit=3, offset=1, with_embedding=True, exact=True
        )
    )
    assert r.results[0].id == "neuromancer"
    assert len(r.results[0].embedding) == DIM
    assert not r.results[0].HasField("metadata")
    r = stub.SearchVectors(
        pb.SearchVectorsRequest(collection=books, query_vector=[1, 0, 0, 0], score_threshold=0.95)
    )
    assert [h.id for h in r.results] == ["dune", "neuromancer"]


def field(key, **kwargs) -> filter_pb2.Condition:
    return filter_pb2.Condition(field=filter_pb2.FieldCondition(key=key, **kwargs))


@pytest.mark.parametrize(
    "flt, expected",
    [
        (
            filter_pb2.Filter(must=[field("genre", match=filter_pb2.Match(keyword="scifi"))]),
            {"dune", "neuromancer"},
        ),
        (filter_pb2.Filter(must=[field("year", match=filter_pb2.Match(integer=1815))]), {"emma"}),
        (
            filter_pb2.Filter(
                must=[
                    field(
                        "genre",
                        match=filter_pb2.Match(
                            any_keyword=filter_pb2.StringList(values=["horror", "romance"])
                        ),
                    )
                ]
            ),
            {"emma", "dracula"},
        ),
        (
            filter_pb2.Filter(must=[field("year", range=filter_pb2.Range(gte=1890, lt=1970))]),
            {"dune", "dracula"},
        ),
        (
            filter_pb2.Filter(must_not=[field("genre", match=filter_pb2.Match(keyword="scifi"))]),
            {"emma", "dracula"},
        ),
        (
            filter_pb2.Filter(
                should=[
                    field("year", match=filter_pb2.Match(integer=1984)),
                    field("genre", match=filter_pb2.Match(keyword="horror")),
                ]
            ),
            {"neuromancer", "dracula"},
        ),
        (
            filter_pb2.Filter(
                must=[filter_pb2.Condition(has_id=filter_pb2.HasIdCondition(ids=["emma", "dune"]))]
            ),
            {"emma", "dune"},
        ),
        (
            filter_pb2.Filter(
                must=[
                    filter_pb2.Condition(
                        filter=filter_pb2.Filter(must_not=[field("year", range=filter_pb2.Range(lt=1900))])
                    )
                ]
            ),
            {"dune", "neuromancer"},
        ),
    ],
    ids=["keyword", "integer", "any", "range", "must_not", "should", "has_id", "nested"],
)
def test_search_scroll_count_filters(stub, books, flt, expected):
    hits = stub.SearchVectors(
        pb.SearchVectorsRequest(collection=books, query_vector=[1, 1, 1, 1], limit=10, filter=flt)
    )
    assert {h.id for h in hits.results} == expected
    assert stub.CountVectors(pb.CountVectorsRequest(collection=books, filter=flt)).count == len(expected)
    page = stub.ScrollVectors(pb.ScrollVectorsRequest(collection=books, filter=flt))
    assert {v.id for v in page.vectors} == expected


def test_scroll_pages_through_every_vector_once(stub):
    name = make_collection(stub)
    stub.UpsertVectors(
        pb.UpsertVectorsRequest(collection=name, vectors=[vec(f"v{i}", [1, i, 0, 1]) for i in range(25)])
    )
    seen, token = [], ""
    while True:
        page = stub.ScrollVectors(
            pb.ScrollVectorsRequest(collection=name, page_size=7, page_token=token, with_embedding=True)
        )
        seen += [v.id for v in page.vectors]
        assert all(len(v.embedding) == DIM for v in page.vectors)
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(f"v{i}" for i in range(25))


def test_delete_vectors_by_ids_and_by_filter(stub, books):
    r = stub.DeleteVectors(
        pb.DeleteVectorsRequest(collection=books, ids=pb.VectorIds(ids=["emma", "nobody"]))
    )
    assert r.deleted_count == 1
    r = stub.DeleteVectors(
        pb.DeleteVectorsRequest(
            collection=books,
            filter=filter_pb2.Filter(must=[field("genre", match=filter_pb2.Match(keyword="scifi"))]),
        )
    )
    assert r.deleted_count == 2
    left = stub.ScrollVectors(pb.ScrollVectorsRequest(collection=books))
    assert [v.id for v in left.vectors] == ["dracula"]


def test_large_upsert_within_message_limit(stub):
    """5,000 × 384 floats is about 8 MB on the wire: above gRPC's 4 MB default, within ours."""
    name = make_collection(stub, dim=384)
    vectors = [vec(f"big-{i}", [math.sin(i + j) for j in range(384)], i=i) for i in range(5000)]
    r = stub.UpsertVectors(pb.UpsertVectorsRequest(collection=name, vectors=vectors), timeout=120)
    assert r.upserted_count == 5000
    assert stub.CountVectors(pb.CountVectorsRequest(collection=name)).count == 5000


# -- bad input: the right status, a message naming the field, nothing written -----------------


def expect_error(rpc, request, code: grpc.StatusCode, *fragments: str) -> str:
    with pytest.raises(grpc.RpcError) as e:
        rpc(request)
    got_code, details = status_of(e)
    assert got_code == code, details
    for fragment in fragments:
        assert fragment in details, details
    return details


def test_wrong_dimension_names_the_field(stub, books):
    expect_error(
        stub.SearchVectors,
        pb.SearchVectorsRequest(collection=books, query_vector=[1, 0]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "query_vector",
        "has 2 values",
        "dimension 4",
    )


def test_batch_with_one_bad_item_writes_nothing(stub):
    name = make_collection(stub)
    good = [vec(f"ok-{i}", [1, 0, 0, 0]) for i in range(10)]
    bad = vec("bad", [1, 0, float("nan"), 0])
    expect_error(
        stub.UpsertVectors,
        pb.UpsertVectorsRequest(collection=name, vectors=[*good, bad, *good[:0]]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "vectors[10].embedding[2]",
        "not a finite number",
    )
    assert stub.CountVectors(pb.CountVectorsRequest(collection=name)).count == 0


def test_an_upsert_of_several_check_slices_keeps_every_index(stub):
    # Vectors are checked 4,096 at a time: indexes in errors and the values written stay each vector's own.
    name = make_collection(stub, distance=resources_pb2.DISTANCE_EUCLID)
    vectors = [vec(f"v{i}", [i, 0.5, -i, 0.25], n=i) for i in range(4100)]
    bad = list(vectors)
    bad[4098] = vec("v4098", [1, 2, float("inf"), 4])
    expect_error(
        stub.UpsertVectors,
        pb.UpsertVectorsRequest(collection=name, vectors=bad),
        grpc.StatusCode.INVALID_ARGUMENT,
        "vectors[4098].embedding[2]",
    )
    assert stub.CountVectors(pb.CountVectorsRequest(collection=name)).count == 0
    assert (
        stub.UpsertVectors(pb.UpsertVectorsRequest(collection=name, vectors=vectors)).upserted_count == 4100
    )
    for i in (0, 4095, 4096, 4099):
        got = stub.GetVector(pb.GetVectorRequest(collection=name, id=f"v{i}")).vector
        assert list(got.embedding) == [i, 0.5, -i, 0.25] and got.metadata["n"] == i


@pytest.mark.parametrize(
    "vectors, fragments",
    [
        ([vec("", [1, 0, 0, 0])], ["vectors[0].id", "required"]),
        ([vec("x" * 300, [1, 0, 0, 0])], ["vectors[0].id", "limit is 256"]),
        ([vec("a", [1, 0, 0, 0]), vec("a", [0, 1, 0, 0])], ["vectors[1].id", "repeats vectors[0].id"]),
        ([vec("a", [1, 0, 0, float("inf")])], ["vectors[0].embedding[3]"]),
        ([vec("a", [1, 0, 0])], ["vectors[0].embedding", "has 3 values"]),
        ([vec("a", [1, 0, 0, 0], _citadel_x=1)], ["vectors[0].metadata._citadel_x", "reserved"]),
        ([], ["vectors", "at least one"]),
        # The first fault in request order is named, whichever check finds it.
        (
            [vec("a", [1, float("nan"), 0, 0]), vec("b", [1, 0, 0, 0], _citadel_x=1)],
            ["vectors[0].embedding[1]", "not a finite number"],
        ),
        (
            [vec("a", [1, 0, 0, 0]), vec("", [1, 0, 0, 0]), vec("c", [float("nan"), 0, 0, 0])],
            ["vectors[1].id", "required"],
        ),
        ([vec("a", [1, 0, 0, float("nan")], _citadel_x=1)], ["vectors[0].embedding[3]"]),
        ([vec("a", [float("-inf"), 0, 0, 0]), vec("b", [1, 0, 0])], ["vectors[0].embedding[0]"]),
        (
            [vec("a", [1, 0, 0, 0]), vec("b", [1, 0, 0]), vec("c", [float("nan"), 0, 0, 0])],
            ["vectors[1].embedding"],
        ),
    ],
    ids=[
        "empty-id",
        "long-id",
        "duplicate-id",
        "inf",
        "short",
        "reserved-key",
        "empty-batch",
        "nan-before-a-later-reserved-key",
        "id-before-a-later-nan",
        "nan-before-its-own-reserved-key",
        "inf-before-a-later-short",
        "short-before-a-later-nan",
    ],
)
def test_invalid_vectors(stub, vectors, fragments):
    name = make_collection(stub)
    expect_error(
        stub.UpsertVectors,
        pb.UpsertVectorsRequest(collection=name, vectors=vectors),
        grpc.StatusCode.INVALID_ARGUMENT,
        *fragments,
    )
    assert stub.CountVectors(pb.CountVectorsRequest(collection=name)).count == 0


def test_unknown_collection_is_not_found(stub):
    for rpc, request in [
        (stub.GetCollection, pb.GetCollectionRequest(name="missing-collection")),
        (stub.DeleteCollection, pb.DeleteCollectionRequest(name="missing-collection")),
        (
            stub.InsertVector,
            pb.InsertVectorRequest(collection="missing-collection", vector=vec("a", [1, 0, 0, 0])),
        ),
        (
            stub.SearchVectors,
            pb.SearchVectorsRequest(collection="missing-collection", query_vector=[1, 0, 0, 0]),
        ),
        (stub.CountVectors, pb.CountVectorsRequest(collection="missing-collection")),
        (stub.ScrollVectors, pb.ScrollVectorsRequest(collection="missing-collection")),
        (stub.GetVector, pb.GetVectorRequest(collection="missing-collection", id="a")),
        (
            stub.DeleteVectors,
            pb.DeleteVectorsRequest(collection="missing-collection", ids=pb.VectorIds(ids=["a"])),
        ),
    ]:
        expect_error(rpc, request, grpc.StatusCode.NOT_FOUND, "missing-collection")


def test_unknown_vector_is_not_found(stub, books):
    expect_error(
        stub.GetVector, pb.GetVectorRequest(collection=books, id="nope"), grpc.StatusCode.NOT_FOUND, "'nope'"
    )


def test_collection_errors(stub):
    name = make_collection(stub)
    expect_error(
        stub.CreateCollection,
        pb.CreateCollectionRequest(collection=resources_pb2.Collection(name=name, dimension=4, distance=1)),
        grpc.StatusCode.ALREADY_EXISTS,
        name,
    )
    for collection, fragments in [
        (
            resources_pb2.Collection(name="bad name!", dimension=4, distance=1),
            ["collection.name", "not a valid"],
        ),
        (resources_pb2.Collection(name="", dimension=4, distance=1), ["collection.name", "required"]),
        (resources_pb2.Collection(name=unique(), dimension=0, distance=1), ["collection.dimension"]),
        (resources_pb2.Collection(name=unique(), dimension=4), ["collection.distance"]),
        (
            resources_pb2.Collection(
                name=unique(), dimension=4, distance=1, indexed_fields=[resources_pb2.IndexedField(key="k")]
            ),
            ["collection.indexed_fields[0].type"],
        ),
    ]:
        expect_error(
            stub.CreateCollection,
            pb.CreateCollectionRequest(collection=collection),
            grpc.StatusCode.INVALID_ARGUMENT,
            *fragments,
        )


@pytest.mark.parametrize(
    "flt, fragments",
    [
        (filter_pb2.Filter(must=[filter_pb2.Condition()]), ["filter.must[0]", "set one of"]),
        (
            filter_pb2.Filter(must=[field("", match=filter_pb2.Match(keyword="x"))]),
            ["filter.must[0].field.key", "required"],
        ),
        (filter_pb2.Filter(should=[field("genre")]), ["filter.should[0].field", "set match, range"]),
        (filter_pb2.Filter(must=[field("year", range=filter_pb2.Range())]), ["filter.must[0].field.range"]),
        (
            filter_pb2.Filter(must=[field("year", range=filter_pb2.Range(lt=float("nan")))]),
            ["filter.must[0].field.range.lt"],
        ),
        (
            filter_pb2.Filter(must_not=[filter_pb2.Condition(has_id=filter_pb2.HasIdCondition())]),
            ["filter.must_not[0].has_id.ids"],
        ),
        (
            filter_pb2.Filter(must=[field("g", match=filter_pb2.Match(any_keyword=filter_pb2.StringList()))]),
            ["filter.must[0].field.match.any_keyword.values"],
        ),
        (
            filter_pb2.Filter(should=[field("first name", match=filter_pb2.Match(keyword="x"))]),
            ["filter.should[0].field.key", "not a metadata path"],
        ),
        (
            filter_pb2.Filter(must=[field("a..b", range=filter_pb2.Range(gt=1))]),
            ["filter.must[0].field.key", "not a metadata path"],
        ),
        (
            filter_pb2.Filter(must=[field('"_citadel_id"', match=filter_pb2.Match(keyword="x"))]),
            ["filter.must[0].field.key", "reserved"],
        ),
    ],
    ids=[
        "empty-condition",
        "empty-key",
        "no-match-or-range",
        "empty-range",
        "nan-bound",
        "empty-has-id",
        "empty-any",
        "key-with-space",  # the store once failed on these: INTERNAL
        "key-empty-segment",
        "quoted-reserved-key",
    ],
)
def test_bad_filter_names_the_field(stub, books, flt, fragments):
    expect_error(
        stub.SearchVectors,
        pb.SearchVectorsRequest(collection=books, query_vector=[1, 0, 0, 0], filter=flt),
        grpc.StatusCode.INVALID_ARGUMENT,
        *fragments,
    )
    expect_error(
        stub.DeleteVectors,
        pb.DeleteVectorsRequest(collection=books, filter=flt),
        grpc.StatusCode.INVALID_ARGUMENT,
        *fragments,
    )
    assert stub.CountVectors(pb.CountVectorsRequest(collection=books)).count == 4


def test_index_keys_are_metadata_paths_and_a_refused_one_leaves_nothing(stub):
    """An index key the store cannot parse is INVALID_ARGUMENT before anything is written (it
    was INTERNAL, and the half-created collection made its name fail until a restart)."""
    name = unique()
    keyword = resources_pb2.FIELD_TYPE_KEYWORD
    for key in ["🦀", "first name", "a..b", ".a"]:
        expect_error(
            stub.CreateCollection,
            pb.CreateCollectionRequest(
                collection=resources_pb2.Collection(
                    name=name,
                    dimension=DIM,
                    distance=resources_pb2.DISTANCE_COSINE,
                    indexed_fields=[resources_pb2.IndexedField(key=key, type=keyword)],
                )
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "collection.indexed_fields[0].key",
            "not a metadata path",
        )
    stub.CreateCollection(
        pb.CreateCollectionRequest(
            collection=resources_pb2.Collection(
                name=name,
                dimension=DIM,
                distance=resources_pb2.DISTANCE_COSINE,
                indexed_fields=[
                    resources_pb2.IndexedField(key='"first name"', type=keyword),
                    resources_pb2.IndexedField(key="tags[]", type=keyword),
                    resources_pb2.IndexedField(key="été.année", type=resources_pb2.FIELD_TYPE_INTEGER),
                ],
            )
        )
    )
    stub.UpsertVectors(
        pb.UpsertVectorsRequest(
            collection=name,
            vectors=[
                resources_pb2.Vector(
                    id="ada",
                    embedding=[1, 0, 0, 0],
                    metadata=metadata(**{"first name": "Ada", "tags": ["x"], "été": {"année": 1815}}),
                ),
                vec("bob", [0, 1, 0, 0], tags=["y"]),
            ],
        )
    )
    for key, match in [
        ('"first name"', filter_pb2.Match(keyword="Ada")),
        ("tags[]", filter_pb2.Match(keyword="x")),
        ("été.année", filter_pb2.Match(integer=1815)),
    ]:
        flt = filter_pb2.Filter(must=[field(key, match=match)])
        assert stub.CountVectors(pb.CountVectorsRequest(collection=name, filter=flt)).count == 1, key


def test_paging_and_limit_errors(stub, books):
    expect_error(
        stub.SearchVectors,
        pb.SearchVectorsRequest(collection=books, query_vector=[1, 0, 0, 0], limit=5000),
        grpc.StatusCode.INVALID_ARGUMENT,
        "limit",
    )
    expect_error(
        stub.ScrollVectors,
        pb.ScrollVectorsRequest(collection=books, page_token="garbage!"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "page_token",
    )
    expect_error(
        stub.ListCollections,
        pb.ListCollectionsRequest(page_token="%%%"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "page_token",
    )
    expect_error(
        stub.ListCollections,
        pb.ListCollectionsRequest(page_size=-1),
        grpc.StatusCode.INVALID_ARGUMENT,
        "page_size",
    )
    expect_error(
        stub.DeleteVectors,
        pb.DeleteVectorsRequest(collection=books),
        grpc.StatusCode.INVALID_ARGUMENT,
        "selector",
    )
    expect_error(
        stub.SearchVectors,
        pb.SearchVectorsRequest(collection=books),
        grpc.StatusCode.INVALID_ARGUMENT,
        "query_vector",
    )


def test_deadline_is_honoured(stub, books):
    """A call that needs far longer than its deadline (embedding 120 fresh texts, within
    limits.embed_texts_per_call) ends with DEADLINE_EXCEEDED, and the server carries on."""
    texts = [f"deadline probe {uuid.uuid4().hex} number {i}" for i in range(120)]
    with pytest.raises(grpc.RpcError) as e:
        stub.GenerateEmbedding(pb.GenerateEmbeddingRequest(texts=texts), timeout=0.05)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert stub.CountVectors(pb.CountVectorsRequest(collection=books), timeout=10).count == 4


def test_request_id_comes_back(stub, books):
    _, call = stub.CountVectors.with_call(
        pb.CountVectorsRequest(collection=books), metadata=[("x-request-id", "req-42")]
    )
    assert dict(call.trailing_metadata())["x-request-id"] == "req-42"


def test_generate_embedding_with_the_default_model(stub):
    one = stub.GenerateEmbedding(pb.GenerateEmbeddingRequest(text="a quiet harbour at dawn"), timeout=60)
    assert one.dimensions == 384 and len(one.embedding) == 384 and one.model
    many = stub.GenerateEmbedding(pb.GenerateEmbeddingRequest(texts=["a quiet harbour at dawn", "tax forms"]))
    assert [list(e.values) for e in many.embeddings][0] == list(one.embedding)
    assert len(many.embeddings) == 2


@pytest.mark.parametrize(
    "request_, fragment",
    [
        (pb.GenerateEmbeddingRequest(), "text"),
        (pb.GenerateEmbeddingRequest(text="a", texts=["b"]), "texts"),
        (pb.GenerateEmbeddingRequest(texts=["ok", "  "]), "texts[1]"),
    ],
    ids=["empty", "both", "blank"],
)
def test_generate_embedding_bad_input(stub, request_, fragment):
    expect_error(stub.GenerateEmbedding, request_, grpc.StatusCode.INVALID_ARGUMENT, fragment)
