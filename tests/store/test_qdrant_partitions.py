"""Collections sharing a physical Qdrant collection (store/qdrant_placement.py), on qdrant-client's
local mode (no Qdrant server runs here, none is faked).

Two tenants' collections with identical ids, payloads and filters never see each other's points
through any call; deleting one leaves the other; the registry is shared by replicas. Local mode
locks its path per process, so two replicas are two QdrantStores (each with its own registry
cache) over one client: the cache's invalidation is what is under test, not Qdrant's transport.
Collections of the layout before partitioning are adopted without losing a point.
"""

from __future__ import annotations

import asyncio
import json
import time

import grpc
import pytest
import pytest_asyncio
from qdrant_client import AsyncQdrantClient, models

from citadel.server.config import ConfigError, Settings
from citadel.server.errors import ApiError
from citadel.server.store import keywords
from citadel.server.store.base import RESERVED_PAYLOAD_KEY, CollectionSpec, Point, SearchQuery, StoreQuery
from citadel.server.store.layout import CollectionLayout
from citadel.server.store.point_ids import point_id
from citadel.server.store.qdrant import QdrantStore
from citadel.server.store.qdrant_placement import PlacementPolicy
from citadel.server.store.qdrant_registry import CACHE_SECONDS, decode_spec, encode_spec
from citadel.vector.v1 import filter_pb2 as fpb
from tests.store.races import one_create_wins

pytestmark = pytest.mark.asyncio

TENANTS = ("acme", "globex")
IDS = [f"p{i}" for i in range(8)]


def _vector(i: int) -> list[float]:
    return [1.0, i / 10, (i % 3) / 5, 0.5]


def _spec(name: str, **kw) -> CollectionSpec:
    return CollectionSpec(name=name, dimension=4, distance="cosine", keywords=True, **kw)


def _points() -> list[Point]:
    """The same points for every collection: ids, vectors, payloads and texts alike."""
    return [
        Point(
            id=i,
            vector=_vector(n),
            metadata={"color": ["red", "blue"][n % 2], "n": n},
            text=f"sourdough bread {n}",
        )
        for n, i in enumerate(IDS)
    ]


def red() -> fpb.Filter:
    return fpb.Filter(
        must=[fpb.Condition(field=fpb.FieldCondition(key="color", match=fpb.Match(keyword="red")))]
    )


async def _open(tmp_path, **policy) -> QdrantStore:
    return QdrantStore.local(tmp_path / "qdrant", PlacementPolicy(**policy))


@pytest_asyncio.fixture
async def store(tmp_path):
    s = await _open(tmp_path)
    yield s
    await s.close()


async def _physical(store: QdrantStore) -> list[str]:
    return sorted(c.name for c in (await store._client.get_collections()).collections)


async def _raises(code: grpc.StatusCode, coro) -> ApiError:
    with pytest.raises(ApiError) as e:
        await coro
    assert e.value.code == code, e.value
    return e.value


# -- isolation ----------------------------------------------------------------------------


async def _everything(store: QdrantStore, name: str) -> dict:
    """What every call on points answers for `name`."""
    bread = keywords.query("sourdough bread")
    by_ids = fpb.Filter(must=[fpb.Condition(has_id=fpb.HasIdCondition(ids=["p1", "p2"]))])
    return {
        "search": [h.point.id for h in await store.search(name, SearchQuery(vector=_vector(3), limit=100))],
        "search red": [
            h.point.id
            for h in await store.search(name, SearchQuery(vector=_vector(3), limit=100, filter=red()))
        ],
        "nearest": [
            (h.point.id, round(h.score, 4))
            for h in await store.query(name, StoreQuery(limit=100, dense=_vector(2)))
        ],
        "keyword": [
            (h.point.id, round(h.score, 4))
            for h in await store.query(name, StoreQuery(limit=100, sparse=bread))
        ],
        "hybrid": [
            h.point.id
            for h in await store.query(
                name, StoreQuery(limit=100, dense=_vector(2), sparse=bread, candidates=100)
            )
        ],
        "recommend": [
            h.point.id for h in await store.query(name, StoreQuery(limit=100, positives=(_vector(1),)))
        ],
        "facet": sorted(await store.facet(name, "color", None, 10)),
        "facet red": await store.facet(name, "color", red(), 10),
        "count": await store.count(name, None),
        "count red": await store.count(name, red()),
        "count by id": await store.count(name, by_ids),
        "scroll": sorted(p.id for p in (await store.scroll(name, None, 100, "", False, False)).points),
        "retrieve": sorted(p.id for p in await store.retrieve(name, IDS)),
        "vectors": (await store.get_collection(name)).vector_count,
    }


async def test_two_tenants_with_identical_points_never_see_each_others(store):
    for tenant in TENANTS:
        await store.create_collection(_spec(f"{tenant}.docs", indexed_fields=(("color", "keyword"),)))
    await store.upsert("acme.docs", _points())
    # One physical collection holds both, with the registry beside it.
    assert await _physical(store) == ["_citadel_registry", "_citadel_shared_4_cosine_kw"]
    alone = await _everything(store, "acme.docs")
    assert alone["count"] == len(IDS) and alone["vectors"] == len(IDS) and alone["count by id"] == 2
    empty = await _everything(store, "globex.docs")
    assert all(not v for v in empty.values()), empty

    await store.upsert("globex.docs", _points())
    # Every answer is what one collection alone gives: keyword scores included (BM25 IDF is
    # taken over the partition, not over both tenants' texts).
    assert await _everything(store, "acme.docs") == alone
    assert await _everything(store, "globex.docs") == alone

    # Writes and deletes by id, by filter, of the collection: the other keeps all it had.
    await store.upsert("acme.docs", [Point(id="p0", vector=_vector(0), metadata={"color": "green"})])
    assert await store.delete_matching("acme.docs", red()) == alone["count red"] - 1
    assert await store.delete_ids("acme.docs", ["p1", "missing"]) == 1
    assert await _everything(store, "globex.docs") == alone
    await store.delete_collection("acme.docs")
    assert await _everything(store, "globex.docs") == alone
    await _raises(grpc.StatusCode.NOT_FOUND, store.count("acme.docs", None))
    assert [s.name for s in await store.list_collections()] == ["globex.docs"]
    # The name is free again, with nothing of the old collection in it.
    await store.create_collection(_spec("acme.docs"))
    assert (await store.get_collection("acme.docs")).vector_count == 0
    assert await store.retrieve("acme.docs", IDS) == []


async def test_listing_is_by_tenant(store):
    for name in ("acme.b", "acme.a", "globex.a", "shared"):
        await store.create_collection(_spec(name))
    assert [s.name for s in await store.list_collections("acme")] == ["acme.a", "acme.b"]
    assert [s.name for s in await store.list_collections("")] == ["shared"]
    assert [s.name for s in await store.list_collections()] == ["acme.a", "acme.b", "globex.a", "shared"]


async def test_generations_are_partitions_and_switch_moves_the_name(store):
    await store.create_collection(_spec("acme.docs"))
    await store.upsert("acme.docs", _points())
    await store.create_collection(CollectionSpec(name="acme.docs~g1", dimension=4, distance="cosine"))
    await store.upsert("acme.docs~g1", [Point(id="p0", vector=_vector(5), metadata={"g": 1})])
    await store.switch("acme.docs", "acme.docs~g1")
    assert await store.count("acme.docs", None) == 1
    assert (await store.retrieve("acme.docs", ["p0"]))[0].metadata == {"g": 1}
    assert await store.count("acme.docs~0", None) == len(IDS)  # kept for rollback
    assert await _physical(store) == [
        "_citadel_registry",
        "_citadel_shared_4_cosine",
        "_citadel_shared_4_cosine_kw",
    ]


# -- placement ----------------------------------------------------------------------------


async def test_auto_placement_partitions_on_a_qdrant_server_only():
    def placement(server: bool, **settings) -> str:
        return PlacementPolicy.from_settings(Settings(**settings), server=server).placement

    assert (placement(server=True), placement(server=False)) == ("partitioned", "dedicated")
    assert placement(server=False, qdrant_placement="partitioned") == "partitioned"
    assert placement(server=True, qdrant_placement="dedicated") == "dedicated"
    with pytest.raises(ValueError, match="store.qdrant_placement: 'shared' is not one of"):
        placement(server=True, qdrant_placement="shared")
    with pytest.raises(ConfigError, match="store.qdrant_placement"):
        Settings.from_env({"CITADEL_QDRANT_PLACEMENT": "shared"})


async def test_dedicated_placements(tmp_path):
    store = await _open(tmp_path, dedicated_tenants=frozenset({"big"}))
    try:
        await store.create_collection(_spec("big.docs"))
        await store.create_collection(_spec("acme.own", layout=CollectionLayout(hnsw_m=32)))
        await store.create_collection(_spec("acme.docs", indexed_fields=(("k", "keyword"),)))
        await store.create_collection(_spec("acme.other", indexed_fields=(("k", "integer"),)))  # clashes
        # What each read passes itself needs no collection of its own.
        per_read = CollectionLayout(read_consistency="majority", quantization_oversampling=3.0)
        await store.create_collection(_spec("acme.reads", layout=per_read))
        names = ("big.docs", "acme.own", "acme.docs", "acme.other", "acme.reads")
        dedicated = {n: not (await store._registry.get(n)).where.shared for n in names}
        assert dedicated == {
            "big.docs": True,
            "acme.own": True,
            "acme.docs": False,
            "acme.other": True,
            "acme.reads": False,
        }
        assert (await store.get_collection("acme.reads")).spec.layout == per_read
        for name in dedicated:  # all alike to callers
            await store.upsert(name, _points())
            assert await store.count(name, None) == len(IDS)
            await store.delete_collection(name)
        assert await _physical(store) == ["_citadel_registry", "_citadel_shared_4_cosine_kw"]
    finally:
        await store.close()


@pytest_asyncio.fixture
async def replicas(tmp_path):
    """Two stores over one client: two gateway replicas on one Qdrant (local mode locks its
    path per process, so they cannot be two processes here)."""
    client = AsyncQdrantClient(path=str(tmp_path / "qdrant"))
    yield client, QdrantStore(client), QdrantStore(client)
    await client.close()


# -- replicas: one registry, a cache each ---------------------------------------------------


async def test_replicas_share_the_registry_and_never_reach_a_deleted_collections_points(replicas):
    client, a, b = replicas
    await a.create_collection(_spec("acme.docs"))
    await b.upsert("acme.docs", _points()[:2])
    assert [s.name for s in await a.list_collections("acme")] == ["acme.docs"]
    assert await a.count("acme.docs", None) == 2
    generation = (await b.get_collection("acme.docs")).spec.home
    assert await b.count(generation, None) == 2  # b's cache now holds the generation

    # a deletes it and makes it anew (another dimension: another shared collection).
    await a.delete_collection("acme.docs")
    await a.create_collection(CollectionSpec(name="acme.docs", dimension=3, distance="dot"))
    # b's copy, still fresh, names the old partition: it finds nothing there, never a
    # point of the old collection, and its write there is dropped and made where the
    # name is now (or refused, had the collection not been made again).
    assert await b.count(generation, None) == 0
    await b.upsert(generation, [Point(id="late", vector=[1.0, 0, 0], metadata={})])
    assert [p.id for p in await a.retrieve("acme.docs", ["late"])] == ["late"]
    shared = "_citadel_shared_4_cosine_kw"
    assert (await client.count(shared)).count == 0  # nothing left behind in the old layout

    await a.delete_collection("acme.docs")
    await _raises(grpc.StatusCode.NOT_FOUND, b.get_collection("acme.docs"))
    await asyncio.sleep(CACHE_SECONDS)
    await _raises(grpc.StatusCode.NOT_FOUND, b.upsert(generation, _points()[:1]))
    assert (await client.count("_citadel_shared_3_dot")).count == 0

    # Two replicas creating one name at once: exactly one makes it.
    await one_create_wins(a.create_collection(_spec("acme.race")), b.create_collection(_spec("acme.race")))


async def test_a_switch_applies_once_over_what_its_caller_read(replicas):
    client, a, b = replicas
    await a.create_collection(_spec("docs"))
    for g in ("docs~g1", "docs~g2"):
        await a.create_collection(_spec(g))
    await a.switch("docs", "docs~g1")
    # b read the name before a's switch: its switch must not undo a's as if it never was.
    stale = await b._registry.get("docs")
    await a.switch("docs", "docs~g2")
    moved = await b._registry.replace(stale, over_generation="docs~0")
    assert not moved and (await a.get_collection("docs")).spec.home == "docs~g2"
    assert (await b.get_collection("docs")).spec.previous == "docs~g1"


async def test_a_delete_stopped_midway_hides_the_collection_and_the_next_one_finishes_it(store):
    await store.create_collection(_spec("acme.docs"))
    await store.upsert("acme.docs", _points())
    await store._registry.mark_deleting(["acme.docs", "acme.docs~0"])  # then the gateway died
    await _raises(grpc.StatusCode.NOT_FOUND, store.count("acme.docs", None))
    assert await store.list_collections() == []
    await store.delete_collection("acme.docs")
    assert (await store._client.count("_citadel_shared_4_cosine_kw")).count == 0
    await store.create_collection(_spec("acme.docs"))


# -- collections made before the registry ---------------------------------------------------


async def _old_layout(client: AsyncQdrantClient) -> None:
    """What the previous Citadel made: `acme.docs` an alias of `acme.docs~0`, spec in the
    collection's metadata, and `plain`, a collection of its own name (before generations)."""
    ours = {
        "description": "old",
        "indexed_fields": [["color", "keyword"]],
        "created_at": 1700000000.0,
        "physical": "acme.docs~0",
    }
    await client.create_collection(
        "acme.docs~0",
        vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE),
        metadata={RESERVED_PAYLOAD_KEY: ours},
    )
    await client.update_collection_aliases(
        [
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name="acme.docs~0", alias_name="acme.docs")
            )
        ]
    )
    await client.create_collection(
        "plain", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)
    )
    for collection in ("acme.docs~0", "plain"):
        await client.upsert(
            collection,
            [
                models.PointStruct(
                    id=point_id(p.id),
                    vector=p.vector,
                    payload={**p.metadata, RESERVED_PAYLOAD_KEY: {"id": p.id, "created_at": time.time()}},
                )
                for p in _points()
            ],
        )


async def test_collections_of_the_layout_before_are_adopted_without_losing_a_point(tmp_path):
    client = AsyncQdrantClient(path=str(tmp_path / "qdrant"))
    await _old_layout(client)
    store = QdrantStore(client)
    try:
        listed = {s.name: s for s in await store.list_collections()}
        assert sorted(listed) == ["acme.docs", "plain"]
        assert listed["acme.docs"].description == "old" and listed["acme.docs"].indexed_fields == (
            ("color", "keyword"),
        )
        for name in listed:
            assert (await store.get_collection(name)).vector_count == len(IDS)
            assert sorted(p.id for p in await store.retrieve(name, IDS)) == sorted(IDS)
            [hit] = await store.search(name, SearchQuery(vector=_vector(3), limit=1, filter=red()))
            assert hit.point.id in IDS
            await _raises(grpc.StatusCode.ALREADY_EXISTS, store.create_collection(_spec(name)))
        # A re-embed switches an adopted collection like any other, keeping it for rollback.
        await store.create_collection(CollectionSpec(name="plain~g1", dimension=3, distance="cosine"))
        await store.switch("plain", "plain~g1")
        assert (await store.get_collection("plain")).spec.previous == "plain~legacy"
        assert await store.count("plain~legacy", None) == len(IDS)

        for name in listed:
            await store.delete_collection(name)
        assert await store.list_collections() == []
        assert await _physical(store) == ["_citadel_registry", "_citadel_shared_3_cosine"]
        assert (await client.get_aliases()).aliases == []
    finally:
        await store.close()


async def test_an_old_layout_name_is_adopted_on_first_use_without_a_listing(tmp_path):
    client = AsyncQdrantClient(path=str(tmp_path / "qdrant"))
    await _old_layout(client)
    store = QdrantStore(client)
    try:
        assert await store.count("acme.docs", red()) == len(IDS) // 2
        await store.upsert("acme.docs", [Point(id="new", vector=_vector(0), metadata={})])
        assert (await client.count("acme.docs~0")).count == len(IDS) + 1  # written where it was
    finally:
        await store.close()


class CountingClient(AsyncQdrantClient):
    """qdrant-client's own async client, counting the listings of Qdrant's collection and
    alias names."""

    listings = 0

    async def get_collections(self, **kwargs):
        self.listings += 1
        return await super().get_collections(**kwargs)

    async def get_aliases(self, **kwargs):
        self.listings += 1
        return await super().get_aliases(**kwargs)


async def test_missing_names_cost_one_listing_per_interval_not_one_per_call(tmp_path):
    client = CountingClient(path=str(tmp_path / "qdrant"))
    store = QdrantStore(client)
    try:
        await store.create_collection(_spec("acme.docs"))
        before = client.listings
        for i in range(20):
            await _raises(grpc.StatusCode.NOT_FOUND, store.get_collection(f"acme.missing{i}"))
            await _raises(grpc.StatusCode.NOT_FOUND, store.count(f"acme.missing{i}", None))
        assert client.listings - before <= 2  # collections and aliases, listed once
    finally:
        await store.close()


# -- review of the partitioned store: races, bounds, page tokens --------------------------


async def test_a_create_finishes_a_delete_stopped_midway_instead_of_refusing_the_name(store):
    await store.create_collection(_spec("acme.docs"))
    await store.upsert("acme.docs", _points())
    await store._registry.mark_deleting(["acme.docs", "acme.docs~0"])  # then the gateway died
    await _raises(grpc.StatusCode.NOT_FOUND, store.get_collection("acme.docs"))
    # The name is gone for callers, so it can be made again (it was ALREADY_EXISTS until
    # someone deleted the collection nobody could see), with nothing of the old one in it.
    await store.create_collection(_spec("acme.docs"))
    assert (await store.get_collection("acme.docs")).vector_count == 0
    assert (await store._client.count("_citadel_shared_4_cosine_kw")).count == 0


async def test_a_delete_finishing_late_never_removes_a_collection_made_again_since(replicas):
    client, a, b = replicas
    await a.create_collection(_spec("acme.docs"))
    names = ["acme.docs", "acme.docs~0"]
    await b._registry.mark_deleting(names)  # b's delete has begun ...
    await a.create_collection(_spec("acme.docs"))  # ... a finishes it and makes the name again
    await a.upsert("acme.docs", _points())
    await b._registry.remove(names)  # ... b's delete takes its last step
    await b._registry.mark_deleting(["acme.gone"])  # an entry removed meanwhile: no error
    assert await b.count("acme.docs", None) == len(IDS)
    assert [s.name for s in await b.list_collections("acme")] == ["acme.docs"]


async def test_a_partitions_drop_is_one_delete_by_filter_not_waited_for(store, monkeypatch):
    """A partition of millions of points is deleted in one call Qdrant applies in its own time:
    waiting would outlast store.qdrant_timeout_seconds and fail the delete UNAVAILABLE."""
    await store.create_collection(_spec("acme.docs"))
    await store.upsert("acme.docs", _points())
    sent = []
    delete = store._client.delete

    async def recorded(collection, selector, **kwargs):
        sent.append((collection, selector, kwargs))
        return await delete(collection, selector, **kwargs)

    monkeypatch.setattr(store._client, "delete", recorded)
    await store.delete_collection("acme.docs")
    [(collection, selector, kwargs)] = [s for s in sent if s[0] != "_citadel_registry"]
    assert collection == "_citadel_shared_4_cosine_kw" and kwargs["wait"] is False
    assert isinstance(selector, models.FilterSelector)
    assert (await store._client.count(collection)).count == 0


async def test_a_delete_leaves_a_physical_collection_a_create_has_made_and_not_yet_named(tmp_path):
    store = await _open(tmp_path, placement="dedicated")
    client = store._client
    try:
        await store.create_collection(_spec("acme.docs"))

        async def physical(name: str, made_at: float) -> None:
            ours = {RESERVED_PAYLOAD_KEY: {"generation": "acme.docs~0", "made_at": made_at}}
            params = models.VectorParams(size=4, distance=models.Distance.COSINE)
            await client.create_collection(name, vectors_config=params, metadata=ours)

        # Another replica's create of the name, between making its collection and writing
        # its entry; one a create left an hour ago; one of the layout before the registry.
        await physical("acme.docs~0~creating", time.time())
        await physical("acme.docs~0~abandoned", time.time() - 3600)
        await client.create_collection(
            "acme.docs~7", vectors_config=models.VectorParams(size=4, distance="Dot")
        )
        await store.delete_collection("acme.docs")
        assert await _physical(store) == ["_citadel_registry", "acme.docs~0~creating"]
    finally:
        await store.close()


async def test_page_tokens_page_within_the_partition_only(store):
    for tenant in TENANTS:
        await store.create_collection(_spec(f"{tenant}.docs"))
    await store.upsert("acme.docs", _points())
    await store.upsert("globex.docs", _points()[:3])

    async def pages(name: str, token: str = "") -> tuple[list[str], list[str]]:
        ids, tokens = [], []
        while True:
            page = await store.scroll(name, None, 2, token, False, False)
            ids += [p.id for p in page.points]
            if not page.next_token:
                return ids, tokens
            token = page.next_token
            tokens.append(token)

    acme, acme_tokens = await pages("acme.docs")
    assert sorted(acme) == IDS and len(acme_tokens) == len(IDS) // 2 - 1
    assert sorted((await pages("globex.docs"))[0]) == IDS[:3]
    # acme's tokens name acme's point ids: globex paging from them still sees only its own.
    for token in acme_tokens:
        assert set((await pages("globex.docs", token))[0]) <= set(IDS[:3])


async def test_filters_on_reserved_keys_cannot_leave_the_partition(store):
    """The servicer refuses `_citadel` keys (tests/security/test_qdrant_tenancy.py); the store,
    given one anyway, stays inside the partition: the caller's filter only narrows it."""
    for tenant in TENANTS:
        await store.create_collection(_spec(f"{tenant}.docs"))
        await store.upsert(f"{tenant}.docs", _points())
    globex = await store._registry.get("globex.docs")
    theirs = fpb.Filter(
        should=[
            fpb.Condition(field=fpb.FieldCondition(key=f"_citadel.{key}", match=fpb.Match(keyword=value)))
            for key, value in (("tenant", "globex"), ("partition", globex.where.partition))
        ]
    )
    assert await store.count("acme.docs", theirs) == 0
    assert await store.search("acme.docs", SearchQuery(vector=_vector(1), limit=10, filter=theirs)) == []
    assert await store.facet("acme.docs", "_citadel.tenant", None, 10) == [("acme", len(IDS))]
    assert await store.delete_matching("acme.docs", theirs) == 0
    assert await store.count("globex.docs", None) == len(IDS)


async def test_a_registry_entry_decodes_to_the_spec_written():
    spec = _spec(
        "acme.docs",
        indexed_fields=(("color", "keyword"), ("n", "integer")),
        embedding_model="general",
        fingerprint=((0.25, -1.0, 3.5), (1.0, 0.0, 2.0)),
        layout=CollectionLayout(hnsw_m=32, quantization_oversampling=2.0),
    )
    assert decode_spec(json.loads(json.dumps(encode_spec(spec)))) == spec
    assert decode_spec(json.loads(json.dumps(encode_spec(_spec("acme.bare"))))) == _spec("acme.bare")


async def test_two_replicas_adopting_one_old_layout_collection_agree_and_lose_nothing(replicas):
    client, a, b = replicas
    await _old_layout(client)
    adopted = await asyncio.gather(*(s._legacy.adopt(n) for s in (a, b) for n in ("acme.docs", "plain")))
    assert adopted[0] == adopted[2] and adopted[1] == adopted[3]  # one entry per name
    assert [e.where.collection for e in adopted[:2]] == ["acme.docs~0", "plain"]
    family = await a._registry.family("acme.docs")
    assert sorted(e.name for e in family) == ["acme.docs", "acme.docs~0"]
    for store in (a, b):
        assert [s.name for s in await store.list_collections()] == ["acme.docs", "plain"]
        assert await store.count("acme.docs", None) == await store.count("plain", None) == len(IDS)
    assert sorted(await _physical(a)) == ["_citadel_registry", "acme.docs~0", "plain"]
