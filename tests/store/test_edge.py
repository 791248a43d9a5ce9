"""What only the embedded engine promises: index builds in the background that never hide a
write, payload indexes on first use, durability across a killed process, snapshots, and one
process per data dir. The shared protocol behaviour is in test_store_contract.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap

import grpc
import numpy as np
import pytest
import pytest_asyncio

from citadel.server.errors import ApiError
from citadel.server.store.base import CollectionSpec, Point, SearchQuery, StoreQuery
from citadel.server.store.edge import EdgeStore
from citadel.server.store.edge_collection import SEARCH_THREADS, HnswParams
from citadel.server.store.keywords import query as keyword_query
from citadel.server.store.layout import CollectionLayout
from citadel.vector.v1 import filter_pb2 as fpb
from tests.store.test_edge_build_child import build_children

pytestmark = pytest.mark.asyncio

DIM = 16
# Small enough that a few thousand points make a real HNSW build in a second or two.
SMALL = HnswParams(m=16, ef_construct=64, ef=64, index_after=500)


def _points(vectors: np.ndarray, start: int = 0, prefix: str = "v") -> list[Point]:
    return [
        Point(
            id=f"{prefix}{start + i}",
            vector=v.tolist(),
            metadata={"n": start + i, "tag": f"t{(start + i) % 4}"},
        )
        for i, v in enumerate(vectors)
    ]


@pytest_asyncio.fixture
async def store(tmp_path):
    # settle_seconds high: builds start only when a test asks, so each test controls timing.
    s = EdgeStore(tmp_path / "edge", SMALL, settle_seconds=3600)
    yield s
    await s.close()


async def _top1(store: EdgeStore, vectors: np.ndarray, ids: list[str], exact: bool = False) -> list[str]:
    """The ids each vector finds first that are not the expected ones (empty: all found)."""
    misses = []
    for v, expected in zip(vectors, ids, strict=True):
        [hit] = await store.search("c", SearchQuery(vector=v.tolist(), limit=1, exact=exact))
        if hit.point.id != expected:
            misses.append(expected)
    return misses


async def test_writes_are_searchable_exactly_before_during_and_after_a_background_build(store):
    rng = np.random.default_rng(1)
    first = rng.standard_normal((3000, DIM)).astype(np.float32)
    await store.create_collection(CollectionSpec("c", DIM, "cosine"))
    await store.upsert("c", _points(first))

    # Not yet in any graph: the engine scans them, so approximate search equals exact search.
    assert store.index_status("c").indexed_vectors == 0
    queries = rng.standard_normal((40, DIM)).astype(np.float32)
    for q in queries:
        approx = await store.search("c", SearchQuery(vector=q.tolist(), limit=10))
        exact = await store.search("c", SearchQuery(vector=q.tolist(), limit=10, exact=True))
        assert [h.point.id for h in approx] == [h.point.id for h in exact]

    build = asyncio.create_task(store.build_index("c"))
    collection = store._collections["c"]
    while collection.journal is None:  # the copy is taken; the child process is building
        assert not build.done()
        await asyncio.sleep(0.01)

    # Written while the copy is being indexed: found at once, and kept through the swap.
    during = rng.standard_normal((200, DIM)).astype(np.float32)
    await store.upsert("c", _points(during, start=3000))
    assert await _top1(store, during[:50], [f"v{3000 + i}" for i in range(50)]) == []
    assert await store.delete_ids("c", ["v0", "v1"]) == 2
    replaced = rng.standard_normal((1, DIM)).astype(np.float32)
    await store.upsert("c", [Point(id="v2", vector=replaced[0].tolist(), metadata={"moved": True})])
    assert not build.done(), "the build finished before the writes it should journal"
    assert store.index_status("c").indexed_vectors == 0  # still the live, unindexed shard

    await build
    status = store.index_status("c")
    assert status.indexed_vectors >= 3000 - 2
    assert await store.count("c", None) == 3200 - 2
    assert await store.retrieve("c", ["v0", "v1"]) == []
    [v2] = await store.retrieve("c", ["v2"])
    assert v2.metadata == {"moved": True}
    # HNSW now serves the old points; the journaled ones sit unindexed and are scanned.
    assert await _top1(store, first[10:60], [f"v{i}" for i in range(10, 60)]) == []
    assert await _top1(store, during[50:], [f"v{3000 + i}" for i in range(50, 200)]) == []
    # The old shard generation is gone from disk; exactly one is live.
    assert [p.name for p in collection.path.glob("shard-*")] == [collection.shard_dir]


async def _state(store: EdgeStore, name: str) -> dict[str, tuple]:
    """Every point of the collection as (metadata, text, rounded vector), by id."""
    out, token = {}, ""
    while True:
        page = await store.scroll(name, None, 1000, token, with_vector=True, with_metadata=True)
        for p in page.points:
            out[p.id] = (p.metadata, p.text, tuple(round(x, 4) for x in p.vector))
        token = page.next_token
        if not token:
            return out


async def test_writes_during_a_build_reach_the_new_generation_as_the_live_shard_has_them(tmp_path):
    """The journal keeps an upsert as its point ids and the swap copies those points from the
    live shard: replaces, deletes by id and by filter, and re-upserts after a delete, made
    while the copy is indexed, leave the built generation exactly as the live one was, keyword
    vectors included."""
    store = EdgeStore(tmp_path / "edge", SMALL, settle_seconds=3600)
    try:
        await store.create_collection(CollectionSpec("c", DIM, "cosine", keywords=True))
        rng = np.random.default_rng(9)

        def points(start: int, n: int, tag: str) -> list[Point]:
            vectors = rng.standard_normal((n, DIM)).astype(np.float32)
            made = _points(vectors, start)
            for p in made:
                p.metadata["tag"] = tag
                p.text = f"{tag} note {p.id}"
            return made

        await store.upsert("c", points(0, 3000, "old"))
        build = asyncio.create_task(store.build_index("c"))
        collection = store._collections["c"]
        while collection.journal is None:
            assert not build.done()
            await asyncio.sleep(0.01)

        await store.upsert("c", points(3000, 600, "new"))  # new points, in several slices
        await store.upsert("c", points(0, 10, "replaced"))  # points the copy holds, replaced
        await store.upsert("c", points(5000, 5, "gone"))
        assert await store.delete_ids("c", [f"v{5000 + i}" for i in range(5)] + ["v10"]) == 6
        await store.upsert("c", points(20, 3, "back"))  # the copy holds these three as "old"
        tagged = fpb.Filter(
            must=[fpb.Condition(field=fpb.FieldCondition(key="tag", match=fpb.Match(keyword="back")))]
        )
        assert await store.delete_matching("c", tagged) == 3  # on the copy it would match none
        await store.upsert("c", points(20, 2, "back"))  # two of them again; v22 stays deleted
        assert all(isinstance(entry, list) for entry in collection.journal[:3]), (
            "upserts keep ids, not points"
        )
        assert not build.done(), "the build finished before the writes it should journal"
        live = await _state(store, "c")

        await build
        assert collection.journal is None
        assert store.index_status("c").indexed_vectors >= 3000 - 11
        assert await _state(store, "c") == live
        assert len(live) == 3000 - 2 + 600
        assert live["v0"][0]["tag"] == "replaced" and live["v20"][0]["tag"] == "back"
        assert "v10" not in live and "v22" not in live
        # The copied keyword vectors answer keyword queries on the new generation.
        [hit] = await store.query(
            "c", StoreQuery(limit=1, sparse=keyword_query("replaced note v3"), with_metadata=True)
        )
        assert hit.point.id == "v3"
    finally:
        await store.close()


async def _600_points(tmp_path, caplog, settle_seconds: float, seed: int):
    """A store with collection "c" of 600 random points (over SMALL's threshold: a build is due),
    its build log captured."""
    caplog.set_level(logging.INFO, logger="citadel.store.edge")
    store = EdgeStore(tmp_path / "edge", SMALL, settle_seconds=settle_seconds)
    await store.create_collection(CollectionSpec("c", DIM, "cosine"))
    rng = np.random.default_rng(seed)
    await store.upsert("c", _points(rng.standard_normal((600, DIM)).astype(np.float32)))
    return store, rng


async def test_a_build_outrun_by_the_writes_made_during_it_is_stopped_for_one_from_the_live_shard(
    tmp_path, caplog
):
    """Replaying more than twice the points a build indexed would cost more than its graph
    saves, and hold a second copy of them: the build is dropped as soon as the writes outrun
    it, its child stopped then rather than left to finish (here it is frozen, so only being
    stopped ends it), and the next starts from the live shard, which has every write."""
    store, rng = await _600_points(tmp_path, caplog, settle_seconds=3600, seed=11)
    try:
        build = asyncio.create_task(store.build_index("c"))
        collection = store._collections["c"]
        child = await _build_child()
        os.kill(child, signal.SIGSTOP)
        later = rng.standard_normal((1500, DIM)).astype(np.float32)
        await store.upsert("c", _points(later, start=600))
        await asyncio.wait_for(build, 120)

        messages = [r.getMessage() for r in caplog.records]
        assert [m for m in messages if "discarded" in m] == [
            "index build of collection 'c' discarded: 1500 points were written during it, more than 2 times "
            "the 600 it indexed; the next build starts from the live shard"
        ]
        assert not build_children(os.getpid()), "the frozen child was left behind"
        assert len([m for m in messages if " done in " in m]) == 1  # the one from the live shard
        assert store.index_status("c").indexed_vectors == 2100
        assert await store.count("c", None) == 2100
        assert await _top1(store, later[:50], [f"v{600 + i}" for i in range(50)]) == []
        assert [p.name for p in collection.path.glob("shard-*")] == [collection.shard_dir]
    finally:
        await store.close()


async def test_after_an_outrun_build_the_next_waits_until_writes_pause(tmp_path, caplog):
    """Writes that outran one build would outrun the next started while they go on at that
    rate: the next automatic build starts only once they pause, and then indexes them all."""
    store, rng = await _600_points(tmp_path, caplog, settle_seconds=0.3, seed=12)
    try:
        os.kill(await _build_child(), signal.SIGSTOP)  # the automatic build, held until outrun
        written = 600
        while "discarded" not in caplog.text:
            await store.upsert("c", _points(rng.standard_normal((100, DIM)).astype(np.float32), written))
            written += 100
            await asyncio.sleep(0.02)
        for _ in range(40):  # 2 s of steady writes, several settle periods
            await store.upsert("c", _points(rng.standard_normal((50, DIM)).astype(np.float32), written))
            written += 50
            await asyncio.sleep(0.05)
        started = [r.getMessage() for r in caplog.records if " started: " in r.getMessage()]
        assert len(started) == 1, started

        for _ in range(600):  # writes paused: the next build starts and indexes everything
            if store.index_status("c").indexed_vectors >= written:
                break
            await asyncio.sleep(0.1)
        assert store.index_status("c").indexed_vectors == written
        assert await store.count("c", None) == written
    finally:
        await store.close()


async def _build_child() -> int:
    """The pid of the index build child this process started (waits for it to appear)."""
    for _ in range(3000):
        if children := build_children(os.getpid()):
            return children[0]
        await asyncio.sleep(0.01)
    raise AssertionError("no index build child started")


async def test_a_build_starts_by_itself_once_writes_settle(tmp_path):
    store = EdgeStore(tmp_path / "edge", SMALL, settle_seconds=0.1)
    try:
        await store.create_collection(CollectionSpec("c", DIM, "dot"))
        vectors = np.random.default_rng(2).standard_normal((1500, DIM)).astype(np.float32)
        await store.upsert("c", _points(vectors))
        for _ in range(600):
            if store.index_status("c").indexed_vectors >= 1500:
                break
            await asyncio.sleep(0.1)
        assert store.index_status("c").indexed_vectors >= 1500
        assert await store.count("c", None) == 1500
    finally:
        await store.close()


async def test_filter_keys_get_payload_indexes_at_the_next_build_with_unchanged_results(store):
    await store.create_collection(CollectionSpec("c", DIM, "cosine", indexed_fields=(("tag", "keyword"),)))
    rng = np.random.default_rng(3)
    points = _points(rng.standard_normal((2000, DIM)).astype(np.float32))
    for i, p in enumerate(points):  # numbers stored as ints and as floats in one field
        p.metadata.update({"flag": i % 3 == 0, "x": i if i % 2 else i + 0.5})
    await store.upsert("c", points)
    filters = [
        fpb.Filter(must=[fpb.Condition(field=fpb.FieldCondition(key="flag", match=fpb.Match(boolean=True)))]),
        fpb.Filter(must=[fpb.Condition(field=fpb.FieldCondition(key="x", range=fpb.Range(gte=100, lt=900)))]),
        fpb.Filter(must=[fpb.Condition(field=fpb.FieldCondition(key="n", match=fpb.Match(integer=7)))]),
        fpb.Filter(must=[fpb.Condition(field=fpb.FieldCondition(key="tag", match=fpb.Match(keyword="t1")))]),
    ]
    query = SearchQuery(vector=rng.standard_normal(DIM).tolist(), limit=20)
    before = []
    for f in filters:
        hits = await store.search("c", SearchQuery(**{**query.__dict__, "filter": f}))
        before.append((await store.count("c", f), [h.point.id for h in hits]))
    assert store.index_status("c").payload_indexes == ["tag"]  # declared at create

    await store.build_index("c")

    assert store.index_status("c").payload_indexes == ["flag", "n", "tag", "x"]
    after = []
    for f in filters:
        hits = await store.search("c", SearchQuery(**{**query.__dict__, "filter": f}))
        after.append((await store.count("c", f), [h.point.id for h in hits]))
    assert [count for count, _ in after] == [667, 800, 1, 500]
    assert after == before


async def test_upserts_survive_a_killed_process_without_flush(tmp_path):
    root = tmp_path / "edge"
    writer = textwrap.dedent(
        """
        import asyncio, sys
        from pathlib import Path
        import numpy as np
        from citadel.server.store.base import CollectionSpec, Point
        from citadel.server.store.edge import EdgeStore

        async def main():
            store = EdgeStore(Path(sys.argv[1]), settle_seconds=3600)  # no flush, no build
            await store.create_collection(CollectionSpec("k", 8, "euclid"))
            vectors = np.random.default_rng(5).standard_normal((1000, 8)).astype(np.float32)
            await store.upsert("k", [Point(id=f"v{i}", vector=v.tolist(), metadata={"i": i})
                                     for i, v in enumerate(vectors)])
            await store.delete_ids("k", ["v999"])
            print("written", flush=True)
            await asyncio.sleep(3600)

        asyncio.run(main())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", writer, str(root)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
    finally:
        proc.kill()  # SIGKILL: no close(), no flush
        proc.wait()
    assert proc.returncode == -9

    store = EdgeStore(root)
    try:
        vectors = np.random.default_rng(5).standard_normal((1000, 8)).astype(np.float32)
        got = {p.id: p for p in await store.retrieve("k", [f"v{i}" for i in range(1000)])}
        assert len(got) == 999 and "v999" not in got
        for i in range(999):
            assert got[f"v{i}"].vector == pytest.approx(vectors[i].tolist(), abs=1e-6)
            assert got[f"v{i}"].metadata == {"i": i}
    finally:
        await store.close()


async def test_snapshot_and_restore(store, tmp_path):
    await store.create_collection(CollectionSpec("c", DIM, "cosine", description="backed up"))
    vectors = np.random.default_rng(4).standard_normal((700, DIM)).astype(np.float32)
    await store.upsert("c", _points(vectors))
    archive = await store.snapshot("c", tmp_path / "backups")
    await store.upsert("c", _points(vectors[:5], prefix="later"))  # after the snapshot

    restored = await store.restore(archive, "copy")
    assert restored.description == "backed up" and restored.name == "copy"
    assert await store.count("copy", None) == 700
    assert await store.retrieve("copy", ["later0"]) == []
    await store.delete_collection("c")
    await store.restore(archive, "c")
    [p] = await store.retrieve("c", ["v123"])
    assert p.metadata == {"n": 123, "tag": "t3"}
    with pytest.raises(ApiError) as e:
        await store.restore(archive, "c")
    assert e.value.code == grpc.StatusCode.ALREADY_EXISTS
    assert not list((tmp_path / "edge").glob(".*-*")), "staging dirs are removed"


async def test_one_process_per_data_dir(store, tmp_path):
    with pytest.raises(ApiError) as e:
        EdgeStore(tmp_path / "edge")
    assert e.value.code == grpc.StatusCode.UNAVAILABLE and "in use" in e.value.message


async def test_open_removes_what_a_crash_left_half_done(tmp_path):
    root = tmp_path / "edge"
    store = EdgeStore(root)
    await store.create_collection(CollectionSpec("c", 4, "cosine"))
    await store.upsert("c", [Point(id="a", vector=[1, 0, 0, 0], metadata={})])
    await store.close()
    (root / "c" / "shard-2" / "segments").mkdir(parents=True)  # a build that never swapped in
    (root / "half-created").mkdir()  # no collection.json: creation never finished
    (root / ".deleted-x-1" / "shard-1").mkdir(parents=True)  # a delete that never finished

    store = EdgeStore(root)
    try:
        assert [s.name for s in await store.list_collections()] == ["c"]
        assert [p.id for p in await store.retrieve("c", ["a"])] == ["a"]
        assert sorted(p.name for p in root.iterdir()) == [".lock", "c"]
        assert sorted(p.name for p in (root / "c").iterdir()) == ["collection.json", "shard-1"]
    finally:
        await store.close()


async def test_a_creation_that_fails_leaves_nothing_behind(store):
    """The engine refuses an index key it cannot parse (the servicer checks keys first; this is
    the store's own guarantee): the half-made directory once made every later create of the
    name fail with FileExistsError."""
    with pytest.raises(ValueError):
        await store.create_collection(CollectionSpec("c", 4, "cosine", indexed_fields=(("a b", "keyword"),)))
    await store.create_collection(CollectionSpec("c", 4, "cosine", indexed_fields=(("tag", "keyword"),)))
    assert [s.name for s in await store.list_collections()] == ["c"]


async def test_deleting_a_collection_abandons_its_running_build(tmp_path):
    store = EdgeStore(tmp_path / "edge", SMALL, settle_seconds=0.05)
    try:
        await store.create_collection(CollectionSpec("c", DIM, "cosine"))
        vectors = np.random.default_rng(6).standard_normal((3000, DIM)).astype(np.float32)
        await store.upsert("c", _points(vectors))  # the watcher starts a build after 50 ms
        collection = store._collections["c"]
        while collection.journal is None:
            await asyncio.sleep(0.01)
        await store.delete_collection("c")
        assert await store.list_collections() == []
        assert sorted(p.name for p in (tmp_path / "edge").iterdir()) == [".lock"]
        # The name is free at once, and the abandoned build leaves nothing behind in it.
        await store.create_collection(CollectionSpec("c", DIM, "cosine"))
        await store.upsert("c", _points(vectors[:10]))
        assert await store.count("c", None) == 10
    finally:
        await store.close()


def _on(key: str) -> fpb.Filter:
    return fpb.Filter(must=[fpb.Condition(field=fpb.FieldCondition(key=key, match=fpb.Match(integer=1)))])


async def test_automatic_payload_indexes_stop_at_the_cap_and_filters_still_work(tmp_path, caplog):
    """Two automatic indexes at most (declared ones do not count), counted from the shard's
    own indexes after a restart; a key past the cap is filtered without one, logged once."""
    root = tmp_path / "edge"
    store = EdgeStore(root, SMALL, settle_seconds=3600, auto_indexes=2)
    await store.create_collection(CollectionSpec("c", DIM, "cosine", indexed_fields=(("tag", "keyword"),)))
    rng = np.random.default_rng(5)
    points = _points(rng.standard_normal((600, DIM)).astype(np.float32))
    for i, p in enumerate(points):
        p.metadata.update({f"k{j}": int(i % (j + 2) == 0) for j in range(4)})
    await store.upsert("c", points)
    for key in ("tag", "k0", "k1"):
        await store.count("c", _on(key))
    await store.build_index("c")
    assert store.index_status("c").payload_indexes == ["k0", "k1", "tag"]
    await store.close()

    store = EdgeStore(root, SMALL, settle_seconds=3600, auto_indexes=2)
    try:
        with caplog.at_level("WARNING", logger="citadel.store.edge"):
            counts = [await store.count("c", _on(key)) for key in ("k2", "k3", "k2", "k3")]
        assert counts == [150, 120, 150, 120]  # i % 4 == 0 and i % 5 == 0 of 600: served unindexed
        capped = [r.getMessage() for r in caplog.records if "auto_indexes_per_collection" in r.getMessage()]
        assert len(capped) == 1 and "'c' has 2 automatic payload indexes" in capped[0]
        await store.build_index("c")
        assert store.index_status("c").payload_indexes == ["k0", "k1", "tag"]  # none added
    finally:
        await store.close()


async def test_a_switch_survives_a_restart_and_one_cut_short_is_finished_at_open(tmp_path):
    root = tmp_path / "edge"
    store = EdgeStore(root)
    for name in ("a", "a~g1", "b", "b~g1"):
        await store.create_collection(CollectionSpec(name, 4, "cosine"))
        await store.upsert(name, [Point(id=name, vector=[1, 0, 0, 0], metadata={})])
    await store.switch("a", "a~g1")
    await store.close()
    # A crash right after the alias table was written, before b's first generation was renamed.
    table = json.loads((root / ".aliases.json").read_text())
    table["b"] = {"current": "b~g1", "previous": "b~0", "switched_at": 1.0}
    (root / ".aliases.json").write_text(json.dumps(table))

    store = EdgeStore(root)
    try:
        for name in ("a", "b"):
            spec = (await store.get_collection(name)).spec
            assert (spec.home, spec.previous) == (f"{name}~g1", f"{name}~0")
            assert [p.id for p in await store.retrieve(name, [f"{name}~g1"])] == [f"{name}~g1"]
            assert [p.id for p in await store.retrieve(spec.previous, [name])] == [name]
        assert [s.name for s in await store.list_collections()] == ["a", "b"]
    finally:
        await store.close()


async def test_a_collection_keeping_text_gets_graphs_though_its_keyword_vectors_count_as_indexed(tmp_path):
    """The engine counts each BM25 vector as indexed as soon as it is written: read as graph
    coverage, every point of a collection that keeps text looked indexed and no build began."""
    store = EdgeStore(tmp_path / "edge", SMALL, settle_seconds=0.05)
    try:
        await store.create_collection(CollectionSpec("t", DIM, "cosine", keywords=True))
        vectors = np.random.default_rng(8).standard_normal((3000, DIM)).astype(np.float32)
        points = _points(vectors)
        for i, p in enumerate(points):
            p.text = f"note number {i}"
        await store.upsert("t", points)
        assert store.index_status("t").indexed_vectors < 3000  # not yet: no graph was built
        for _ in range(600):  # the build starts once writes settle; bounded at 60 s
            if store.index_status("t").indexed_vectors == 3000:
                break
            await asyncio.sleep(0.1)
        assert store.index_status("t").indexed_vectors == 3000
    finally:
        await store.close()


async def test_facets_make_indexes_only_within_the_automatic_bound(tmp_path):
    """A facet needs an index on its key: a reader's facets may not create them without end."""
    store = EdgeStore(tmp_path / "edge", auto_indexes=1)
    try:
        await store.create_collection(
            CollectionSpec("f", DIM, "cosine", indexed_fields=(("tag", "keyword"),))
        )
        points = _points(np.ones((4, DIM), dtype=np.float32))
        for i, p in enumerate(points):
            p.metadata = {"tag": "ab"[i % 2], "color": "red", "size": "s"}
        await store.upsert("f", points)
        assert await store.facet("f", "tag", None, 10) == [("a", 2), ("b", 2)]  # declared
        assert await store.facet("f", "color", None, 10) == [("red", 4)]  # the one automatic index
        with pytest.raises(ApiError) as e:
            await store.facet("f", "size", None, 10)
        assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "limits.auto_indexes_per_collection" in e.value.message and "indexed_fields" in e.value.message
    finally:
        await store.close()


async def test_indexed_vectors_stay_on_disk_by_default_and_a_collection_may_keep_them_in_memory(tmp_path):
    """The store's default (store.edge_on_disk_vectors) applies where a collection's layout
    leaves on_disk_vectors unset; the engine keeps the choice in the shard's own config. The int8
    copy and the graph follow it: mapped cold (the store reads them in, test_edge_memory.py) or
    held in memory."""

    def memory(root, name: str) -> tuple[str, str, bool]:
        meta = json.loads((root / name / "collection.json").read_text())
        config = json.loads((root / name / meta["shard"] / "edge_config.json").read_text())
        int8 = config["quantization_config"]["scalar"]["memory"]
        return config["vectors"][""]["memory"], int8, config["hnsw_config"].get("on_disk", False)

    on_disk, in_memory = ("cold", "cold", True), ("cached", "pinned", False)
    for default, expected in ((HnswParams(), on_disk), (HnswParams(on_disk_vectors=False), in_memory)):
        root = tmp_path / expected[0]
        store = EdgeStore(root, default, settle_seconds=3600)
        try:
            await store.create_collection(CollectionSpec("plain", DIM, "cosine"))
            await store.create_collection(
                CollectionSpec("ram", DIM, "cosine", layout=CollectionLayout(on_disk_vectors=False))
            )
            await store.create_collection(
                CollectionSpec("disk", DIM, "cosine", layout=CollectionLayout(on_disk_vectors=True))
            )
        finally:
            await store.close()
        assert (memory(root, "plain"), memory(root, "ram"), memory(root, "disk")) == (expected, in_memory, on_disk)


async def test_each_collection_costs_at_most_a_few_search_threads(tmp_path):
    # The engine's own default pool is 8 threads per shard even on 2 cores: 1,000 collections
    # held 8,000 threads and took ~25 s to open.
    def threads() -> int:
        return len(os.listdir("/proc/self/task"))

    s = EdgeStore(tmp_path / "edge", SMALL, settle_seconds=3600)
    try:
        before = threads()
        for i in range(20):
            await s.create_collection(CollectionSpec(name=f"c{i}", dimension=DIM, distance="cosine"))
        assert threads() - before <= 20 * SEARCH_THREADS + 4
    finally:
        await s.close()
    reopened = EdgeStore(tmp_path / "edge", SMALL, settle_seconds=3600)
    try:
        assert len(await reopened.list_collections()) == 20
        assert threads() - before <= 20 * SEARCH_THREADS + 4
    finally:
        await reopened.close()
