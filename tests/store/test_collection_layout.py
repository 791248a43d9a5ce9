"""A collection's own layout (CollectionSpec.layout) in each store: kept and read back, merged
over the defaults into what the engine is asked to create, and the defaults used where it is
unset. qdrant-client's local mode keeps only a collection's vector params (on_disk), not its
shards or HNSW settings, so what the Qdrant store asks for is read from the real client's
create_collection call: a subclass records its arguments and lets the call through.
"""

from __future__ import annotations

import json

import grpc
import pytest
from qdrant_client import AsyncQdrantClient, models

from citadel.server.errors import ApiError
from citadel.server.store.base import CollectionSpec, Point, SearchQuery, StoreQuery
from citadel.server.store.edge import EdgeStore
from citadel.server.store.layout import CollectionLayout
from citadel.server.store.qdrant import QdrantStore
from citadel.server.store.qdrant_options import QdrantOptions

pytestmark = pytest.mark.asyncio

EVERYTHING = CollectionLayout(
    shard_number=3,
    replication_factor=2,
    write_consistency_factor=2,
    read_consistency="majority",
    hnsw_m=32,
    hnsw_ef_construct=200,
    quantization="int8",
    quantization_oversampling=3.0,
    on_disk_vectors=True,
)


class RecordingClient(AsyncQdrantClient):
    """qdrant-client's own async client, remembering each create_collection's arguments."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.created: dict[str, dict] = {}
        self.queried: list[dict] = []

    async def create_collection(self, collection_name, **kwargs):
        self.created[collection_name] = kwargs
        return await super().create_collection(collection_name, **kwargs)

    async def query_points(self, collection_name, **kwargs):
        self.queried.append(kwargs)
        return await super().query_points(collection_name, **kwargs)


def _spec(name: str, layout: CollectionLayout | None = None) -> CollectionSpec:
    return CollectionSpec(name=name, dimension=4, distance="cosine", layout=layout or CollectionLayout())


async def _qdrant(tmp_path, options: QdrantOptions | None = None) -> tuple[QdrantStore, RecordingClient]:
    client = RecordingClient(path=str(tmp_path / "qdrant"))
    return QdrantStore(client, options), client


def _asked(client: RecordingClient, generation: str) -> dict:
    """What the store asked of Qdrant for a collection with a physical collection of its own
    (named `<generation>~<tag>`: store/qdrant_location.py)."""
    [asked] = [kw for name, kw in client.created.items() if name.startswith(generation + "~")]
    return asked


async def _reads(store: QdrantStore, name: str) -> dict:
    """The read arguments (consistency) the store gives a collection's reads."""
    return store._options_of(await store._registry.get(name)).read_kwargs()


async def test_qdrant_creates_with_the_collections_own_layout(tmp_path):
    store, client = await _qdrant(tmp_path)
    try:
        await store.create_collection(_spec("docs", EVERYTHING))
        asked = _asked(client, "docs~0")  # its own settings: a physical collection of its own
        assert asked["shard_number"] == 3
        assert asked["replication_factor"] == 2
        assert asked["write_consistency_factor"] == 2
        assert (asked["hnsw_config"].m, asked["hnsw_config"].ef_construct) == (32, 200)
        assert asked["quantization_config"].scalar.type == models.ScalarType.INT8
        assert asked["vectors_config"].on_disk is True
        # What qdrant-client's local mode keeps of it: the vectors' own params.
        physical = (await store._registry.get("docs")).where.collection
        assert (await client.get_collection(physical)).config.params.vectors.on_disk is True
        # Reads use the collection's read consistency and oversampling, not the defaults.
        assert await _reads(store, "docs~0") == {"consistency": models.ReadConsistencyType.MAJORITY}
        entry = await store._registry.get("docs~0")
        assert store._options_of(entry).search_params(False).quantization.oversampling == 3.0
    finally:
        await store.close()


async def test_qdrant_layout_round_trips_through_get_and_list(tmp_path):
    store, _ = await _qdrant(tmp_path)
    try:
        await store.create_collection(_spec("docs", EVERYTHING))
        await store.create_collection(_spec("plain"))
        assert (await store.get_collection("docs")).spec.layout == EVERYTHING
        listed = {s.name: s.layout for s in await store.list_collections()}
        assert listed == {"docs": EVERYTHING, "plain": CollectionLayout()}
    finally:
        await store.close()
    # Another gateway (a replica, or this one restarted) reads it from Qdrant's metadata.
    again, _ = await _qdrant(tmp_path)
    try:
        assert (await again.get_collection("docs")).spec.layout == EVERYTHING
        assert await _reads(again, "docs~0") == {"consistency": models.ReadConsistencyType.MAJORITY}
    finally:
        await again.close()


async def test_qdrant_defaults_apply_where_the_layout_is_unset(tmp_path):
    defaults = QdrantOptions(
        shard_number=2,
        replication_factor=2,
        hnsw_m=24,
        quantization="int8",
        on_disk_vectors=True,
        read_consistency="quorum",
    )
    store, client = await _qdrant(tmp_path, defaults)
    try:
        await store.create_collection(_spec("plain"))
        # Without settings of its own it is a partition of its layout's shared collection,
        # made with the defaults; graph links per tenant only (store.qdrant_hnsw_m of them).
        asked = client.created["_citadel_shared_4_cosine"]
        assert (asked["shard_number"], asked["replication_factor"]) == (2, 2)
        assert (asked["hnsw_config"].m, asked["hnsw_config"].payload_m) == (0, 24)
        assert asked["hnsw_config"].ef_construct is None
        assert asked["quantization_config"] is not None and asked["vectors_config"].on_disk is True

        # Each set field overrides its default alone; the others still follow the defaults.
        mine = CollectionLayout(
            shard_number=1, quantization="none", on_disk_vectors=False, read_consistency="one"
        )
        await store.create_collection(_spec("mine", mine))
        asked = _asked(client, "mine~0")
        assert (asked["shard_number"], asked["replication_factor"]) == (1, 2)
        assert "quantization_config" not in asked and asked["vectors_config"].on_disk is None
        assert asked["hnsw_config"].m == 24
        assert await _reads(store, "mine~0") == {"consistency": 1}  # one replica
        assert await _reads(store, "plain~0") == {"consistency": models.ReadConsistencyType.QUORUM}
    finally:
        await store.close()


async def test_qdrant_queries_rescore_quantized_candidates_as_searches_do(tmp_path):
    store, client = await _qdrant(tmp_path)
    layout = CollectionLayout(quantization="int8", quantization_oversampling=3.0)
    try:
        await store.create_collection(_spec("docs", layout))
        await store.upsert("docs", [Point(id=str(i), vector=[1, i, 0, 0], metadata={}) for i in range(4)])
        await store.search("docs", SearchQuery(vector=[1, 0, 0, 0], limit=2))
        await store.query("docs", StoreQuery(limit=2, dense=[1, 0, 0, 0]))
        await store.query("docs", StoreQuery(limit=2, positives=([1, 0, 0, 0],)))
        await store.query("docs", StoreQuery(limit=2, dense=[1, 0, 0, 0], diversity=0.5, mmr_candidates=4))
        searched, nearest, recommend, mmr = client.queried
        for asked in (searched, nearest, recommend, mmr):
            rescore = asked["search_params"].quantization
            assert (rescore.rescore, rescore.oversampling) == (True, 3.0)
    finally:
        await store.close()


async def test_qdrant_refuses_more_acknowledgements_than_copies(tmp_path):
    store, client = await _qdrant(tmp_path, QdrantOptions(replication_factor=2))
    try:
        with pytest.raises(ApiError) as refused:
            await store.create_collection(_spec("docs", CollectionLayout(write_consistency_factor=3)))
        assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.message.startswith("collection.layout.write_consistency_factor:")
        assert "store.qdrant_replication_factor" in refused.value.message
        assert client.created == {} and await store.list_collections() == []
        # Within the configured copies it is created.
        await store.create_collection(_spec("docs", CollectionLayout(write_consistency_factor=2)))
        assert _asked(client, "docs~0")["write_consistency_factor"] == 2
    finally:
        await store.close()


def _edge_config(store_root, name: str) -> dict:
    meta = json.loads((store_root / name / "collection.json").read_text())
    return json.loads((store_root / name / meta["shard"] / "edge_config.json").read_text())


async def test_edge_builds_the_graph_the_layout_asks_for_and_keeps_it(tmp_path):
    root = tmp_path / "edge"
    store = EdgeStore(root)
    mine = CollectionLayout(
        hnsw_m=8, hnsw_ef_construct=96, quantization="none", quantization_oversampling=None
    )
    try:
        await store.create_collection(_spec("mine", mine))
        await store.create_collection(_spec("plain"))
    finally:
        await store.close()
    chosen, default = _edge_config(root, "mine"), _edge_config(root, "plain")
    assert (chosen["hnsw_config"]["m"], chosen["hnsw_config"]["ef_construct"]) == (8, 96)
    assert chosen.get("quantization_config") is None
    assert (default["hnsw_config"]["m"], default["hnsw_config"]["ef_construct"]) == (16, 128)
    assert default["quantization_config"] is not None

    reopened = EdgeStore(root)  # the layout is read back from the collection's own metadata
    try:
        assert (await reopened.get_collection("mine")).spec.layout == mine
        assert {s.name: s.layout for s in await reopened.list_collections()} == {
            "mine": mine,
            "plain": CollectionLayout(),
        }
    finally:
        await reopened.close()


@pytest.mark.parametrize("field", ["shard_number", "replication_factor", "write_consistency_factor"])
async def test_edge_refuses_cluster_settings_naming_the_field(tmp_path, field):
    store = EdgeStore(tmp_path / "edge")
    try:
        with pytest.raises(ApiError) as refused:
            await store.create_collection(_spec("docs", CollectionLayout(**{field: 1})))
        assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert refused.value.message.startswith(f"collection.layout.{field}:")
        with pytest.raises(ApiError) as refused:
            await store.create_collection(_spec("docs", CollectionLayout(read_consistency="all")))
        assert refused.value.message.startswith("collection.layout.read_consistency:")
        assert await store.list_collections() == []
    finally:
        await store.close()
