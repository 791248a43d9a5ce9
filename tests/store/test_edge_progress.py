"""Issue 21 on a small collection: index builds that start while writes still arrive take in
what came since the last one (search gets fast progressively), report their progress
(GetCollection, ListCollections, /metrics, a log line at start and end), and do not rebuild
what nothing changed. The 1M version with timings is `python -m bench scale`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.request

import numpy as np
import pytest

from citadel.server.store.base import CollectionSpec, Point, SearchQuery
from citadel.server.store.edge import EdgeStore
from citadel.server.store.edge_collection import HnswParams
from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.support.gateway_process import GatewayProcess

DIM = 16
SMALL = HnswParams(m=16, ef_construct=64, ef=64, index_after=500)


def _vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _points(vectors: np.ndarray, start: int) -> list[Point]:
    return [Point(id=f"v{start + i}", vector=v.tolist(), metadata={"n": start + i}) for i, v in enumerate(vectors)]


async def _settled(store: EdgeStore, name: str, deadline_s: float = 60.0):
    """The collection's info once no build is running or pending (bounded)."""
    deadline = time.monotonic() + deadline_s
    while True:
        info = await store.get_collection(name)
        if info.index_progress.state == "indexed" or time.monotonic() > deadline:
            return info
        await asyncio.sleep(0.1)


@pytest.mark.asyncio
async def test_builds_during_an_ingest_index_it_progressively_and_report_it(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="citadel.store.edge")
    store = EdgeStore(tmp_path / "edge", SMALL, settle_seconds=0.1)
    try:
        await store.create_collection(CollectionSpec(name="c", dimension=DIM, distance="cosine"))
        vectors = _vectors(6000, seed=1)
        seen: list[tuple[int, int, str]] = []  # (vectors, indexed, state) as GetCollection said
        for start in range(0, len(vectors), 500):
            await store.upsert("c", _points(vectors[start : start + 500], start))
            await asyncio.sleep(0.4)  # an ingest that goes on while builds run
            info = await store.get_collection("c")
            seen.append((info.vector_count, info.index_progress.indexed_vectors, info.index_progress.state))
        info = await _settled(store, "c")

        assert info.vector_count == 6000
        assert info.index_progress.state == "indexed"
        # What is left outside a graph is less than one build's worth.
        assert 6000 - SMALL.index_after < info.index_progress.indexed_vectors <= 6000
        # Progressive: while writes still came, part of the collection was already in graphs,
        # and that part grew from one build to the next.
        during = [indexed for count, indexed, _ in seen if 0 < indexed < count]
        assert len(set(during)) >= 2, seen
        assert {state for *_, state in seen} >= {"building"}, seen
        # Every build said when it started and how it ended.
        started = [r for r in caplog.records if "index build of collection 'c' started" in r.getMessage()]
        done = [r for r in caplog.records if "index build of collection 'c' done in" in r.getMessage()]
        assert len(started) >= 2 and len(started) == len(done)
        assert "6000 points" in done[-1].getMessage() or "of 6000 points in graphs" in done[-1].getMessage()

        # Nothing changed: no further build, however often one is asked for.
        builds = len(started)
        await store.build_index("c")
        await asyncio.sleep(0.5)
        assert len([r for r in caplog.records if "started" in r.getMessage()]) == builds

        # The graphs answer as an exact scan does: exact search compares the original vectors
        # (quantization ignored), the graph search rescored on them finds the same nearest point.
        queries = vectors[:50]
        exact = [(await store.search("c", SearchQuery(vector=q.tolist(), limit=1, exact=True)))[0] for q in queries]
        assert [h.point.id for h in exact] == [f"v{i}" for i in range(50)]
        assert all(abs(h.score - 1.0) < 1e-4 for h in exact)
        graph = [(await store.search("c", SearchQuery(vector=q.tolist(), limit=1)))[0].point.id for q in queries]
        assert graph == [f"v{i}" for i in range(50)]

        [(name, count, progress)] = store.index_progress()
        assert (name, count, progress.state) == ("c", 6000, "indexed")
    finally:
        await store.close()


@pytest.mark.asyncio
async def test_a_collection_below_the_build_threshold_is_indexed_with_no_graph(tmp_path):
    store = EdgeStore(tmp_path / "edge", SMALL, settle_seconds=0.1)
    try:
        await store.create_collection(CollectionSpec(name="c", dimension=DIM, distance="cosine"))
        await store.upsert("c", _points(_vectors(SMALL.index_after - 1, seed=2), 0))
        info = await store.get_collection("c")
        assert (info.index_progress.indexed_vectors, info.index_progress.state) == (0, "indexed")
        await store.upsert("c", _points(_vectors(1, seed=3), SMALL.index_after - 1))
        info = await store.get_collection("c")
        assert info.index_progress.state in ("pending", "building")
        info = await _settled(store, "c")
        assert info.index_progress == info.index_progress.__class__(SMALL.index_after, "indexed")
    finally:
        await store.close()


def test_the_gateway_reports_index_progress_in_get_list_and_metrics(tmp_path):
    # The gateway's own settings: a build starts once 5,000 points wait outside a graph.
    gw = GatewayProcess(tmp_path / "data").start()
    try:
        stub = gw.stub()
        stub.CreateCollection(
            pb.CreateCollectionRequest(
                collection=resources_pb2.Collection(name="p", dimension=8, distance=resources_pb2.DISTANCE_COSINE)
            )
        )
        rng = np.random.default_rng(4)
        for start in range(0, 6000, 2000):
            batch = [
                resources_pb2.Vector(id=f"v{start + i}", embedding=rng.standard_normal(8).tolist())
                for i in range(2000)
            ]
            stub.UpsertVectors(pb.UpsertVectorsRequest(collection="p", vectors=batch), timeout=60)
        states = set()
        deadline = time.monotonic() + 90
        while True:
            c = stub.GetCollection(pb.GetCollectionRequest(name="p"), metadata=(("cache-control", "no-cache"),))
            states.add(c.collection.indexing_state)
            if c.collection.indexing_state == resources_pb2.INDEXING_STATE_INDEXED or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert c.collection.vector_count == 6000
        assert c.collection.indexing_state == resources_pb2.INDEXING_STATE_INDEXED
        assert c.collection.indexed_vector_count > 1000
        assert states & {resources_pb2.INDEXING_STATE_PENDING, resources_pb2.INDEXING_STATE_BUILDING}

        [listed] = stub.ListCollections(
            pb.ListCollectionsRequest(), metadata=(("cache-control", "no-cache"),)
        ).collections
        assert (listed.indexed_vector_count, listed.indexing_state, listed.vector_count) == (
            c.collection.indexed_vector_count,
            resources_pb2.INDEXING_STATE_INDEXED,
            6000,
        )

        metrics = urllib.request.urlopen(f"{gw.http_url}/metrics", timeout=10).read().decode()
        assert 'citadel_collection_vectors{collection="p"} 6000.0' in metrics
        assert f'citadel_collection_indexed_vectors{{collection="p"}} {float(listed.indexed_vector_count)}' in metrics
        assert 'citadel_collection_indexing_state{collection="p",state="indexed"} 1.0' in metrics

        assert "index build of collection 'p' started" in gw.log()
        assert "index build of collection 'p' done in" in gw.log()
    finally:
        gw.stop()
