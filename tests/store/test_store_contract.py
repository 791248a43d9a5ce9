"""One suite for the VectorStore protocol, run against each implementation: qdrant-client local
mode and the embedded qdrant-edge engine. Expected results come from a plain-Python model of
the same data (filters as predicates, scores with numpy), never from either engine.
"""

from __future__ import annotations

import dataclasses
import math
import random

import grpc
import numpy as np
import pytest
import pytest_asyncio

from citadel.server.config import Settings
from citadel.server.errors import ApiError
from citadel.server.store import keywords
from citadel.server.store.base import CollectionSpec, Point, SearchQuery, StoreQuery
from citadel.server.store.factory import open_store
from citadel.vector.v1 import filter_pb2 as fpb

pytestmark = pytest.mark.asyncio

# qdrant-local: the Qdrant-server store code in its default, partitioned layout (collections
# share physical collections); -dedicated: one physical collection per collection.
ENGINES = ["qdrant-local", "qdrant-local-dedicated", "edge"]
DIM = 4
COLORS = ["red", "blue", "green"]


def _metadata(i: int) -> dict:
    return {
        "color": COLORS[i % 3],
        "n": i,
        "ok": i % 2 == 0,
        "score": i / 10,
        "nested": {"x": i % 5},
    }


def _vector(i: int) -> list[float]:
    rng = random.Random(i)
    return [rng.uniform(-1, 1) for _ in range(DIM)]


# Ids include characters a path or URL would mangle: the store keeps the user's id as given.
IDS = [f"p{i}" for i in range(10)] + ["vé/é 10", "id with spaces 11"]
POINTS = {pid: (_vector(i), _metadata(i)) for i, pid in enumerate(IDS)}


def spec(name: str = "c", distance: str = "cosine", **kw) -> CollectionSpec:
    return CollectionSpec(name=name, dimension=DIM, distance=distance, **kw)


async def _open(engine: str, tmp_path):
    if engine == "qdrant-local-dedicated":
        return await open_store(
            Settings(engine="qdrant-local", qdrant_placement="dedicated", data_dir=tmp_path)
        )
    if engine == "qdrant-local":  # partitioned, as on a Qdrant server ("auto" is dedicated locally)
        return await open_store(Settings(engine=engine, qdrant_placement="partitioned", data_dir=tmp_path))
    return await open_store(Settings(engine=engine, data_dir=tmp_path))


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    return request.param


@pytest_asyncio.fixture
async def store(engine, tmp_path):
    s = await _open(engine, tmp_path)
    yield s
    await s.close()


@pytest_asyncio.fixture
async def filled(store):
    await store.create_collection(spec(indexed_fields=(("color", "keyword"),)))
    await store.upsert("c", [Point(id=pid, vector=v, metadata=m) for pid, (v, m) in POINTS.items()])
    return store


def _as_created(stored: CollectionSpec) -> CollectionSpec:
    """A stored spec less where its points are, which each engine names its own way."""
    return dataclasses.replace(stored, physical="")


async def _raises(code: grpc.StatusCode, coro) -> ApiError:
    with pytest.raises(ApiError) as e:
        await coro
    assert e.value.code == code, e.value
    return e.value


# -- filters ------------------------------------------------------------------------------


def keyword(key, v):
    return fpb.Condition(field=fpb.FieldCondition(key=key, match=fpb.Match(keyword=v)))


def integer(key, v):
    return fpb.Condition(field=fpb.FieldCondition(key=key, match=fpb.Match(integer=v)))


def boolean(key, v):
    return fpb.Condition(field=fpb.FieldCondition(key=key, match=fpb.Match(boolean=v)))


def any_keyword(key, *vs):
    return fpb.Condition(
        field=fpb.FieldCondition(key=key, match=fpb.Match(any_keyword=fpb.StringList(values=vs)))
    )


def any_integer(key, *vs):
    return fpb.Condition(
        field=fpb.FieldCondition(key=key, match=fpb.Match(any_integer=fpb.IntegerList(values=vs)))
    )


def in_range(key, **bounds):
    return fpb.Condition(field=fpb.FieldCondition(key=key, range=fpb.Range(**bounds)))


def has_id(*ids):
    return fpb.Condition(has_id=fpb.HasIdCondition(ids=ids))


def nested(**clauses):
    return fpb.Condition(filter=fpb.Filter(**clauses))


def _nested_x(m):
    return m["nested"]["x"]


# (name, filter, predicate over (id, metadata)) — the predicate is the expected semantics.
FILTER_CASES = [
    ("keyword", fpb.Filter(must=[keyword("color", "red")]), lambda i, m: m["color"] == "red"),
    ("integer", fpb.Filter(must=[integer("n", 3)]), lambda i, m: m["n"] == 3),
    ("bool true", fpb.Filter(must=[boolean("ok", True)]), lambda i, m: m["ok"]),
    ("bool false", fpb.Filter(must=[boolean("ok", False)]), lambda i, m: not m["ok"]),
    (
        "any keyword",
        fpb.Filter(must=[any_keyword("color", "red", "green", "pink")]),
        lambda i, m: m["color"] in ("red", "green"),
    ),
    ("any integer", fpb.Filter(must=[any_integer("n", 1, 2, 3, 99)]), lambda i, m: m["n"] in (1, 2, 3)),
    ("range int", fpb.Filter(must=[in_range("n", gte=2, lt=5)]), lambda i, m: 2 <= m["n"] < 5),
    (
        "range float",
        fpb.Filter(must=[in_range("score", gt=0.5, lte=0.9)]),
        lambda i, m: 0.5 < m["score"] <= 0.9,
    ),
    ("range nested key", fpb.Filter(must=[in_range("nested.x", gte=3)]), lambda i, m: _nested_x(m) >= 3),
    (
        "match and range on one key",
        fpb.Filter(
            must=[
                fpb.Condition(
                    field=fpb.FieldCondition(key="n", match=fpb.Match(integer=4), range=fpb.Range(gte=4))
                )
            ]
        ),
        lambda i, m: m["n"] == 4,
    ),
    ("has_id", fpb.Filter(must=[has_id("p1", "vé/é 10", "missing")]), lambda i, m: i in ("p1", "vé/é 10")),
    (
        "nested filter in should",
        fpb.Filter(
            should=[
                nested(must=[keyword("color", "red"), in_range("n", lt=4)]),
                nested(must=[keyword("color", "blue"), in_range("n", gte=7)]),
            ]
        ),
        lambda i, m: (m["color"] == "red" and m["n"] < 4) or (m["color"] == "blue" and m["n"] >= 7),
    ),
    ("must_not", fpb.Filter(must_not=[keyword("color", "red")]), lambda i, m: m["color"] != "red"),
    (
        "should",
        fpb.Filter(should=[integer("n", 1), keyword("color", "green")]),
        lambda i, m: m["n"] == 1 or m["color"] == "green",
    ),
    (
        "must with must_not",
        fpb.Filter(must=[boolean("ok", True)], must_not=[has_id("p0"), in_range("n", gt=8)]),
        lambda i, m: m["ok"] and i != "p0" and m["n"] <= 8,
    ),
    ("matches nothing", fpb.Filter(must=[keyword("color", "pink")]), lambda i, m: False),
]


def _expected(predicate) -> set[str]:
    return {pid for pid, (_, m) in POINTS.items() if predicate(pid, m)}


@pytest.mark.parametrize("case", FILTER_CASES, ids=[c[0] for c in FILTER_CASES])
async def test_filters_in_count_search_and_scroll(filled, case):
    _, f, predicate = case
    expected = _expected(predicate)
    assert await filled.count("c", f) == len(expected)
    hits = await filled.search("c", SearchQuery(vector=_vector(0), limit=100, filter=f))
    assert {h.point.id for h in hits} == expected
    page = await filled.scroll("c", f, 100, "", False, False)
    assert {p.id for p in page.points} == expected and page.next_token == ""


# -- collections --------------------------------------------------------------------------


async def test_collection_lifecycle(store):
    created = spec(
        "b-coll", "dot", description="about b", indexed_fields=(("k", "keyword"), ("n", "integer"))
    )
    created = CollectionSpec(**{**created.__dict__, "created_at": 1700000000.5})
    await store.create_collection(created)
    await store.create_collection(spec("a-coll"))
    await _raises(grpc.StatusCode.ALREADY_EXISTS, store.create_collection(spec("a-coll")))

    info = await store.get_collection("b-coll")
    assert _as_created(info.spec) == created and info.vector_count == 0
    assert [s.name for s in await store.list_collections()] == ["a-coll", "b-coll"]

    await store.delete_collection("a-coll")
    assert [s.name for s in await store.list_collections()] == ["b-coll"]
    await _raises(grpc.StatusCode.NOT_FOUND, store.get_collection("a-coll"))
    await _raises(grpc.StatusCode.NOT_FOUND, store.delete_collection("a-coll"))
    # The name is free again, with nothing of the old collection left in it.
    await store.create_collection(spec("a-coll"))
    assert (await store.get_collection("a-coll")).vector_count == 0


async def test_listing_one_tenants_collections(store):
    for name in ("acme.docs", "acme.films", "globex.docs", "docs"):
        await store.create_collection(spec(name))
    await store.create_collection(CollectionSpec(name="acme.docs~g1", dimension=3, distance="cosine"))
    assert [s.name for s in await store.list_collections("acme")] == ["acme.docs", "acme.films"]
    assert [s.name for s in await store.list_collections("globex")] == ["globex.docs"]
    assert [s.name for s in await store.list_collections("")] == ["docs"]  # the tenant-less namespace
    assert await store.list_collections("initech") == []
    assert len(await store.list_collections()) == 4

    # A page: after a name, at most a limit, in name order.
    assert [s.name for s in await store.list_collections("acme", after="acme.docs")] == ["acme.films"]
    assert [s.name for s in await store.list_collections(limit=2)] == ["acme.docs", "acme.films"]
    assert [s.name for s in await store.list_collections(None, "acme.films", 2)] == ["docs", "globex.docs"]


async def test_every_point_method_on_a_missing_collection_is_not_found(store):
    q = SearchQuery(vector=[1, 0, 0, 0], limit=1)
    for call in (
        store.upsert("nope", [Point(id="a", vector=[1, 0, 0, 0], metadata={})]),
        store.retrieve("nope", ["a"]),
        store.delete_ids("nope", ["a"]),
        store.delete_matching("nope", fpb.Filter(must=[keyword("k", "v")])),
        store.search("nope", q),
        store.scroll("nope", None, 10, "", False, False),
        store.count("nope", None),
    ):
        await _raises(grpc.StatusCode.NOT_FOUND, call)


# -- writes -------------------------------------------------------------------------------


async def test_upsert_replaces_the_whole_point(filled):
    await filled.upsert("c", [Point(id="p1", vector=[0, 0, 1, 0], metadata={"color": "pink"})])
    [p] = await filled.retrieve("c", ["p1"])
    assert p.metadata == {"color": "pink"}  # replaced, not merged
    assert p.vector == pytest.approx([0, 0, 1, 0], abs=1e-6)
    assert await filled.count("c", None) == len(POINTS)
    assert await filled.count("c", fpb.Filter(must=[keyword("color", "pink")])) == 1


async def test_upsert_keeps_the_given_write_time_or_stamps_one(store):
    await store.create_collection(spec())
    await store.upsert(
        "c",
        [
            Point(id="given", vector=[1, 0, 0, 0], metadata={}, created_at=1234.5),
            Point(id="stamped", vector=[0, 1, 0, 0], metadata={}),
        ],
    )
    got = {p.id: p.created_at for p in await store.retrieve("c", ["given", "stamped"])}
    assert got["given"] == 1234.5 and got["stamped"] > 1.6e9


@pytest.mark.parametrize("with_keywords", [False, True])
async def test_a_float32_array_vector_is_stored_as_its_values(store, with_keywords):
    # The servicer hands the store each upserted vector as its checked float32 array.
    await store.create_collection(spec("arrays", distance="dot", keywords=with_keywords))
    given = np.array([0.5, -1.25, 3.0, 1e-3], dtype=np.float32)
    await store.upsert(
        "arrays",
        [
            Point(id="array", vector=given, metadata={"n": 1}, text="sourdough"),
            Point(id="list", vector=given.tolist(), metadata={"n": 2}),
        ],
    )
    got = {p.id: p for p in await store.retrieve("arrays", ["array", "list"])}
    assert got["array"].vector == given.tolist() == got["list"].vector
    assert got["array"].metadata == {"n": 1} and got["array"].text == "sourdough"
    hits = await store.search("arrays", SearchQuery(vector=given.tolist(), limit=2))
    assert [h.score for h in hits] == pytest.approx([float(given @ given)] * 2, rel=1e-6)


async def test_retrieve_returns_only_existing_with_vector_and_metadata(filled):
    got = await filled.retrieve("c", ["p2", "missing", "vé/é 10", "p2"])
    assert sorted(p.id for p in got) == ["p2", "vé/é 10"]
    for p in got:
        v, m = POINTS[p.id]
        assert p.metadata == m
        assert p.vector == pytest.approx(
            list(np.array(v) / np.linalg.norm(v)), abs=1e-6
        )  # cosine: unit length


async def test_delete_ids_counts_only_points_that_existed(filled):
    assert await filled.delete_ids("c", ["p1", "p2", "p2", "missing"]) == 2
    assert await filled.retrieve("c", ["p1", "p2"]) == []
    assert await filled.count("c", None) == len(POINTS) - 2
    assert await filled.delete_ids("c", ["p1"]) == 0


async def test_delete_matching_deletes_and_counts(filled):
    f = fpb.Filter(must=[keyword("color", "red")])
    expected = _expected(lambda i, m: m["color"] == "red")
    assert await filled.delete_matching("c", f) == len(expected)
    assert await filled.count("c", f) == 0
    assert await filled.count("c", None) == len(POINTS) - len(expected)
    assert await filled.delete_matching("c", f) == 0


# -- search -------------------------------------------------------------------------------


def _scores(distance: str, query: list[float]) -> dict[str, float]:
    q = np.array(query)
    out = {}
    for pid, (v, _) in POINTS.items():
        x = np.array(v)
        if distance == "cosine":
            out[pid] = float(q @ x / (np.linalg.norm(q) * np.linalg.norm(x)))
        elif distance == "dot":
            out[pid] = float(q @ x)
        else:
            out[pid] = float(np.linalg.norm(q - x))
    return out


@pytest.mark.parametrize("distance", ["cosine", "dot", "euclid"])
@pytest.mark.parametrize("exact", [False, True])
async def test_search_ranks_best_first_with_true_scores(store, distance, exact):
    await store.create_collection(spec(distance=distance))
    await store.upsert("c", [Point(id=pid, vector=v, metadata=m) for pid, (v, m) in POINTS.items()])
    query = [0.3, -0.2, 0.9, 0.1]
    expected = _scores(distance, query)
    ranked = sorted(expected, key=expected.get, reverse=distance != "euclid")

    hits = await store.search("c", SearchQuery(vector=query, limit=5, exact=exact))
    assert [h.point.id for h in hits] == ranked[:5]
    for h in hits:
        assert h.score == pytest.approx(expected[h.point.id], abs=1e-4)
        assert h.point.vector is None and h.point.metadata is None and h.point.created_at > 0


async def test_search_offset_skips_the_best(filled):
    everything = await filled.search("c", SearchQuery(vector=_vector(5), limit=len(POINTS)))
    page = await filled.search("c", SearchQuery(vector=_vector(5), limit=3, offset=2))
    assert [h.point.id for h in page] == [h.point.id for h in everything[2:5]]


async def test_search_score_threshold(filled):
    query = _vector(7)
    expected = {pid for pid, s in _scores("cosine", query).items() if s >= 0.2}
    assert 0 < len(expected) < len(POINTS)
    hits = await filled.search("c", SearchQuery(vector=query, limit=100, score_threshold=0.2))
    assert {h.point.id for h in hits} == expected
    assert all(h.score >= 0.2 for h in hits)


async def test_search_returns_vector_and_metadata_when_asked(filled):
    [hit] = await filled.search(
        "c", SearchQuery(vector=_vector(4), limit=1, with_vector=True, with_metadata=True)
    )
    v, m = POINTS["p4"]
    assert hit.point.id == "p4" and hit.point.metadata == m
    assert hit.point.vector == pytest.approx(list(np.array(v) / np.linalg.norm(v)), abs=1e-6)
    [hit] = await filled.search("c", SearchQuery(vector=_vector(4), limit=1, with_metadata=True))
    assert hit.point.vector is None and hit.point.metadata == m


async def test_search_on_an_empty_collection_finds_nothing(store):
    await store.create_collection(spec())
    assert await store.search("c", SearchQuery(vector=[1, 0, 0, 0], limit=10)) == []


# -- scroll and count ---------------------------------------------------------------------


async def test_scroll_pages_through_every_point_exactly_once(store):
    await store.create_collection(spec())
    ids = [f"s{i}" for i in range(53)]
    await store.upsert("c", [Point(id=i, vector=_vector(n), metadata={"n": n}) for n, i in enumerate(ids)])
    seen: list[str] = []
    token, pages = "", 0
    while True:
        page = await store.scroll("c", None, 7, token, True, True)
        pages += 1
        assert len(page.points) <= 7
        for p in page.points:
            assert p.vector is not None and p.metadata == {"n": ids.index(p.id)}
        seen += [p.id for p in page.points]
        token = page.next_token
        if not token:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(ids)
    assert pages == math.ceil(len(ids) / 7)


async def test_scroll_with_filter_and_without_payloads(filled):
    f = fpb.Filter(must=[boolean("ok", True)])
    expected = _expected(lambda i, m: m["ok"])
    first = await filled.scroll("c", f, 2, "", False, False)
    assert len(first.points) == 2 and first.next_token
    assert all(p.vector is None and p.metadata is None and p.id for p in first.points)
    rest = await filled.scroll("c", f, 100, first.next_token, False, False)
    assert {p.id for p in first.points + rest.points} == expected


async def test_scroll_rejects_a_foreign_page_token(filled):
    err = await _raises(
        grpc.StatusCode.INVALID_ARGUMENT, filled.scroll("c", None, 5, "bm90LWEtdXVpZA", False, False)
    )
    assert err.message.startswith("page_token:")


async def test_count_all_and_filtered(filled):
    assert await filled.count("c", None) == len(POINTS)
    assert (await filled.get_collection("c")).vector_count == len(POINTS)
    assert await filled.count("c", fpb.Filter(must=[keyword("color", "blue")])) == len(
        _expected(lambda i, m: m["color"] == "blue")
    )


# -- restart ------------------------------------------------------------------------------


async def test_close_and_reopen_keeps_every_vector(engine, tmp_path):
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((300, DIM)).astype(np.float32)
    created = spec("kept", "euclid", description="d", indexed_fields=(("n", "integer"),))
    store = await _open(engine, tmp_path)
    await store.create_collection(created)
    await store.upsert(
        "kept", [Point(id=f"v{i}", vector=v.tolist(), metadata={"n": i}) for i, v in enumerate(vectors)]
    )
    await store.delete_ids("kept", ["v0"])
    await store.close()

    store = await _open(engine, tmp_path)
    try:
        info = await store.get_collection("kept")
        assert _as_created(info.spec) == created and info.vector_count == 299
        got = {p.id: p for p in await store.retrieve("kept", [f"v{i}" for i in range(300)])}
        assert set(got) == {f"v{i}" for i in range(1, 300)}
        for i in range(1, 300):
            assert got[f"v{i}"].vector == pytest.approx(vectors[i].tolist(), abs=1e-6)
            assert got[f"v{i}"].metadata == {"n": i}
        [hit] = await store.search("kept", SearchQuery(vector=vectors[42].tolist(), limit=1))
        assert hit.point.id == "v42" and hit.score == pytest.approx(0, abs=1e-5)
    finally:
        await store.close()


# -- generations: a name switched to another physical collection (re-embedding) ------------


async def test_switch_moves_a_name_to_another_generation_and_keeps_the_previous(store):
    await store.create_collection(spec("c", description="first"))
    await store.upsert("c", [Point(id="old", vector=[1, 0, 0, 0], metadata={"g": 0})])
    first = (await store.get_collection("c")).spec.home
    # Another space: another dimension, built under a generation name no caller can use.
    await store.create_collection(CollectionSpec(name="c~g1", dimension=3, distance="cosine"))
    await store.upsert("c~g1", [Point(id="new", vector=[0, 1, 0], metadata={"g": 1})])
    assert [s.name for s in await store.list_collections()] == ["c"]

    await store.switch("c", "c~g1", caught_up_at=1700000000.5)
    await store.switch("c", "c~g1")  # asked again by a resumed job: nothing changes
    info = await store.get_collection("c")
    assert (info.spec.dimension, info.spec.home, info.vector_count) == (3, "c~g1", 1)
    assert info.spec.previous and info.spec.switched_at > 0
    assert info.spec.caught_up_at == 1700000000.5  # what a resumed re-embed reads back
    hits = await store.search("c", SearchQuery(vector=[0, 1, 0], limit=5))
    assert [h.point.id for h in hits] == ["new"]
    assert [p.id for p in (await store.scroll("c", None, 10, "", False, False)).points] == ["new"]
    # The previous generation is still there, by its own name, for a rollback.
    assert [p.id for p in await store.retrieve(info.spec.previous, ["old"])] == ["old"]
    assert (await store.get_collection(info.spec.previous)).spec.dimension == DIM
    assert [s.name for s in await store.list_collections()] == ["c"]
    await _raises(grpc.StatusCode.ALREADY_EXISTS, store.create_collection(spec("c")))

    # A second switch keeps one previous generation: the first is deleted.
    await store.create_collection(CollectionSpec(name="c~g2", dimension=2, distance="cosine"))
    await store.switch("c", "c~g2")
    assert (await store.get_collection("c")).spec.previous == "c~g1"
    await _raises(grpc.StatusCode.NOT_FOUND, store.get_collection(first if first != "c" else "c~0"))
    # Rolling back is a switch to the previous generation, which keeps the other one.
    await store.switch("c", "c~g1")
    rolled = (await store.get_collection("c")).spec
    assert (rolled.home, rolled.previous) == ("c~g1", "c~g2")

    await store.delete_collection("c")  # every generation goes with the name
    assert await store.list_collections() == []
    for generation in ("c~g1", "c~g2"):
        await _raises(grpc.StatusCode.NOT_FOUND, store.get_collection(generation))
    await store.create_collection(spec("c"))
    assert (await store.get_collection("c")).vector_count == 0


# -- queries beyond nearest: keyword, hybrid, recommend, MMR, facets; the same on both engines --

TEXTS = [
    "sourdough bread rises overnight",
    "glacier ice carves the valley",
    "sourdough starter needs flour",
    "interest rates rise with inflation",
    "bread and butter pudding",
    "the valley floods in spring",
]


async def _texts(store) -> None:
    await store.create_collection(spec("t", keywords=True, indexed_fields=(("color", "keyword"),)))
    await store.upsert(
        "t",
        [
            Point(id=f"d{i}", vector=_vector(i), metadata={"color": COLORS[i % 3]}, text=t)
            for i, t in enumerate(TEXTS)
        ],
    )


def _queries() -> list[StoreQuery]:
    bread = keywords.query("sourdough bread")
    return [
        StoreQuery(limit=4, sparse=bread),
        StoreQuery(limit=4, dense=_vector(1), sparse=bread, candidates=10),
        StoreQuery(limit=4, dense=_vector(1), sparse=bread, candidates=10, weights=(1.0, 3.0)),
        StoreQuery(limit=4, dense=_vector(1), sparse=bread, candidates=10, fusion="dbsf"),
        # The third ranking: BM25 over the texts holding the phrase ("sourdough bread" is d0's).
        StoreQuery(
            limit=4,
            dense=_vector(1),
            sparse=bread,
            candidates=10,
            weights=(1.0, 1.0, 2.0),
            phrase="Sourdough bread",
        ),
        StoreQuery(
            limit=4, dense=_vector(1), sparse=bread, candidates=10, fusion="dbsf", phrase="sourdough bread"
        ),
        StoreQuery(
            limit=4,
            dense=_vector(2),
            sparse=bread,
            candidates=10,
            weights=(1.0, 1.0, 2.0),
            phrase="sourdough bread",
            filter=fpb.Filter(must_not=[fpb.Condition(has_id=fpb.HasIdCondition(ids=["d0"]))]),
        ),
        # Keyword with a phrase (the planner's verbatim probe): only the texts holding it.
        StoreQuery(limit=4, sparse=bread, phrase="Sourdough bread"),
        StoreQuery(limit=4, sparse=bread, phrase="bread sourdough"),
        StoreQuery(limit=4, sparse=keywords.query("valley"), phrase="valley"),
        StoreQuery(limit=4, dense=_vector(1), diversity=0.7, mmr_candidates=6),
        StoreQuery(limit=4, positives=(_vector(0),), negatives=(_vector(3),)),
        StoreQuery(
            limit=4, positives=(_vector(0), _vector(2)), negatives=(_vector(3),), strategy="sum_scores"
        ),
        StoreQuery(
            limit=6,
            dense=_vector(0),
            filter=fpb.Filter(must=[fpb.Condition(text_match=fpb.TextMatchCondition(query="Valley"))]),
        ),
    ]


async def test_queries_rank_alike_on_both_engines(tmp_path):
    answers = {}
    for engine in ENGINES:
        store = await _open(engine, tmp_path / engine)
        try:
            await _texts(store)
            answers[engine] = [
                [(h.point.id, round(h.score, 3)) for h in await store.query("t", q)] for q in _queries()
            ]
            answers[engine].append(await store.facet("t", "color", None, 10))
        finally:
            await store.close()
    assert answers["edge"] == answers["qdrant-local"]
    keyword, _, _, _, phrased, phrased_dbsf, phrase_filtered, *rest = answers["edge"]
    holding, holding_none, holding_word, *_, text_match, facets = rest
    # BM25: both words beat one, texts without either are not scored.
    assert [i for i, _ in keyword][:1] == ["d0"] and {i for i, _ in keyword} == {"d0", "d2", "d4"}
    # The text holding the phrase comes first, whatever the dense query; the phrase ranking
    # keeps to the filter.
    assert phrased[0][0] == "d0" and phrased_dbsf[0][0] == "d0"
    assert "d0" not in {i for i, _ in phrase_filtered}
    assert [i for i, _ in holding] == ["d0"] and holding_none == []
    assert {i for i, _ in holding_word} == {"d1", "d5"}
    assert {i for i, _ in text_match} == {"d1", "d5"}
    assert sorted(facets) == [("blue", 2), ("green", 2), ("red", 2)]


async def test_keyword_queries_need_keyword_vectors(store):
    await store.create_collection(spec("plain"))
    await store.upsert("plain", [Point(id="a", vector=_vector(0), metadata={}, text="sourdough")])
    await _raises(
        grpc.StatusCode.FAILED_PRECONDITION,
        store.query("plain", StoreQuery(limit=1, sparse=keywords.query("sourdough"))),
    )
    hits = await store.query("plain", StoreQuery(limit=1, dense=_vector(0)))
    assert [h.point.id for h in hits] == ["a"]
