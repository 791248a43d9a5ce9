"""VectorStore on qdrant-edge: Qdrant's own Rust engine (segments, payload indexes, HNSW) in
process, the embedded default. One shard per collection under the data dir
(`edge_collection.py`); graphs are built in the background (`edge_indexer.py`).

Engine calls run inline on the event loop, by measurement: writes hold the GIL for the whole
call, and searches, which release it, lost or tied when moved to a thread or coalesced into
`query_batch` on two cores (BENCHMARKS.md, throughput). What keeps other requests moving is
keeping each call short: searches take a few ms, upserts go in slices with a yield between
them, and the one long call, `optimize()`, runs in a child process. File copies run in threads.

A collection name resolves to the physical collection (a "generation") that holds its points:
itself, until a re-embed switches the name to a new generation (`switch`). The table of
switched names is one small file, `.aliases.json`, replaced atomically: the switch.

With engine calls on the loop, thread-safety reduces to ordering on the loop: writes to a collection take its
write lock (multi-step writes and the index build's copy/swap must not interleave), reads
need none. Writes are durable when they return: the engine appends each one to its WAL before
applying it, so they survive a killed process; a restart replays the WAL.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import shutil
import tarfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
import qdrant_edge as edge

from citadel.server.errors import ApiError, already_exists, invalid, not_found, unavailable
from citadel.server.store import edge_collection
from citadel.server.store.base import (
    CollectionInfo,
    CollectionSpec,
    IndexProgress,
    Page,
    Point,
    ScoredPoint,
    SearchQuery,
    StoreQuery,
    generation_name,
    is_generation,
)
from citadel.server.store.edge_collection import INDEX_TYPES, EdgeCollection, HnswParams
from citadel.server.store.edge_filter import filter_keys, to_edge_filter
from citadel.server.store.edge_indexer import Indexer, stop_leftover_build
from citadel.server.store.edge_memory import cap_malloc_arenas, map_vectors_once, read_in_searched
from citadel.server.store.edge_query import to_edge_query
from citadel.server.store.keywords import no_keywords, point_vectors
from citadel.server.store.payload import to_page, to_payload, to_point
from citadel.server.store.point_ids import point_from_token, point_id
from citadel.server.tenancy import tenant_of
from citadel.vector.v1 import filter_pb2

# Points per engine call on upsert: about 10 ms of engine time for 384-d vectors.
_UPSERT_SLICE = 256
# limits.auto_indexes_per_collection's default, for stores made without settings (tests, bench).
AUTO_INDEXES = 16

log = logging.getLogger("citadel.store.edge")
ALIASES = ".aliases.json"  # a dot file: the start-up sweep of dot dirs leaves it alone


@dataclasses.dataclass(frozen=True)
class IndexStatus:
    points: int  # approximate, as the engine counts: a point moving between segments counts twice
    indexed_vectors: int  # in an HNSW graph; the rest are searched exactly
    payload_indexes: list[str]


class EdgeStore:
    """VectorStore on qdrant-edge shards in one data dir, which it holds exclusively."""

    def __init__(
        self,
        root: Path,
        hnsw: HnswParams | None = None,
        settle_seconds: float = 2.0,
        auto_indexes: int = AUTO_INDEXES,
    ) -> None:
        cap_malloc_arenas()  # before the shards start their threads
        map_vectors_once()  # before the first shard maps its vectors
        root.mkdir(parents=True, exist_ok=True)
        self._root = root
        self._hnsw = hnsw or HnswParams()
        # Payload indexes one collection gets on first filter use; declared ones do not count.
        self._auto_indexes = auto_indexes
        self._capped: set[str] = set()  # collections whose cap was logged (once each)
        self._lock_fd = _lock_dir(root)
        self._collections: dict[str, EdgeCollection] = {}
        for path in sorted(root.iterdir()):
            if path.name.startswith("."):
                if path.is_dir():  # an unfinished delete, snapshot or restore
                    shutil.rmtree(path)
                continue
            stop_leftover_build(path)  # before load() deletes the shard dir it may be writing
            c = edge_collection.load(path)
            if c is None:
                shutil.rmtree(path)  # creation never finished
            else:
                self._collections[c.spec.name] = c
        read_in_searched(root)  # once for all: the engine mapped them cold
        # name -> {"current": generation, "previous": generation or "", "switched_at": seconds}
        self._aliases: dict[str, dict] = _read_aliases(root / ALIASES)
        for name, alias in self._aliases.items():
            if name in self._collections and alias["previous"] not in self._collections:
                # A switch away from a collection's first generation stopped before renaming it.
                self._rename(name, alias["previous"])
        self._indexer = Indexer(self._hnsw, settle_seconds)

    async def close(self) -> None:
        await self._indexer.close()
        for c in self._collections.values():
            async with c.write_lock:
                c.closed = True
                c.shard.flush()
                c.shard.close()
        self._collections.clear()
        os.close(self._lock_fd)  # releases the flock

    # -- collections ----------------------------------------------------------------------

    async def create_collection(self, spec: CollectionSpec) -> None:
        _check_name(spec.name)
        if spec.name in self._collections or spec.name in self._aliases:
            raise already_exists(f"collection {spec.name!r}")
        if cluster := spec.layout.cluster_settings():
            raise ApiError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"collection.layout.{cluster[0]}: the embedded engine keeps one copy of each collection "
                f"in this process, so {', '.join(cluster)} cannot apply: leave them unset, or use a "
                "Qdrant cluster (store.qdrant_url)",
            )
        self._collections[spec.name] = edge_collection.create(self._root, spec, self._hnsw_of(spec))

    async def get_collection(self, name: str) -> CollectionInfo:
        c = self._require(name)
        count = c.shard.count(edge.CountRequest(exact=True))
        return CollectionInfo(
            spec=self._spec(name, c), vector_count=count, index_progress=self._index_progress(c, count)
        )

    async def list_collections(
        self, tenant: str | None = None, after: str = "", limit: int = 0
    ) -> list[CollectionSpec]:
        names = sorted({n for n in self._collections if not is_generation(n)} | self._aliases.keys())
        names = [n for n in names if n > after and (tenant is None or tenant_of(n) == tenant)]
        return [self._spec(n, self._require(n)) for n in names[: limit or None]]

    async def delete_collection(self, name: str) -> None:
        self._require(name)
        prefix = generation_name(name, "")
        generations = [k for k in self._collections if k.startswith(prefix)]
        if name in self._aliases:
            del self._aliases[name]
            edge_collection.write_json(self._root / ALIASES, self._aliases)  # the name is gone from here on
        else:
            generations.append(name)
        for key in generations:
            await self._delete(key)

    async def switch(self, name: str, generation: str, caught_up_at: float = 0.0) -> None:
        target = self._require(generation)
        alias = self._aliases.get(name)
        current = alias["current"] if alias else self._require(name).spec.name
        if current == generation:
            return  # switched already (a resumed job asks again)
        superseded = alias["previous"] if alias else ""
        if alias is None:  # the first generation has the name itself: it gets a generation name
            current = generation_name(name, "0")
            await self._indexer.cancel(self._collections[name])
        self._aliases[name] = {
            "current": generation,
            "previous": current,
            "switched_at": time.time(),
            "caught_up_at": caught_up_at,
        }
        edge_collection.write_json(self._root / ALIASES, self._aliases)  # the switch; the rest is tidying
        if alias is None:
            self._rename(name, current)
        log.info("collection %r now reads and writes %r (kept for rollback: %r)", name, generation, current)
        self._indexer.poke(target)
        if superseded and superseded not in (current, generation):
            await self._delete(superseded)

    # -- points ---------------------------------------------------------------------------

    async def upsert(self, collection: str, points: Sequence[Point]) -> None:
        now = time.time()
        async with self._writing(collection) as c:
            for start in range(0, len(points), _UPSERT_SLICE):
                chunk = points[start : start + _UPSERT_SLICE]
                ids = [point_id(p.id) for p in chunk]
                c.upsert(
                    ids,
                    [
                        edge.Point(
                            i, point_vectors(p, c.spec.keywords, edge.SparseVector), to_payload(p, now)
                        )
                        for i, p in zip(ids, chunk, strict=True)
                    ],
                )
                await asyncio.sleep(0)  # lets other requests run between slices
        self._indexer.poke(c)

    async def retrieve(self, collection: str, ids: Sequence[str]) -> list[Point]:
        c = self._require(collection)
        records = c.shard.retrieve([point_id(i) for i in dict.fromkeys(ids)], True, True)
        return [to_point(r.payload, r.vector, True) for r in records]

    async def delete_ids(self, collection: str, ids: Sequence[str]) -> int:
        async with self._writing(collection) as c:
            existing = c.shard.retrieve([point_id(i) for i in dict.fromkeys(ids)], False, False)
            if existing:
                c.apply(edge.UpdateOperation.delete_points([r.id for r in existing]))
        self._indexer.poke(c)
        return len(existing)

    async def delete_matching(self, collection: str, filter: filter_pb2.Filter) -> int:
        async with self._writing(collection) as c:
            efilter = to_edge_filter(filter)
            matching = c.shard.count(edge.CountRequest(exact=True, filter=efilter))
            if matching:
                c.apply(edge.UpdateOperation.delete_points_by_filter(efilter))
        self._indexer.poke(c)
        return matching

    async def search(self, collection: str, query: SearchQuery) -> list[ScoredPoint]:
        c = self._reading(collection, query.filter)
        hits = c.shard.search(
            edge.SearchRequest(
                query=edge.Query.Nearest([float(x) for x in query.vector]),
                limit=query.limit,
                offset=query.offset or None,
                filter=to_edge_filter(query.filter),
                params=self._search_params(query.exact, c),
                with_vector=query.with_vector,
                with_payload=True,  # the original id lives in the payload
                score_threshold=query.score_threshold,
            )
        )
        return [ScoredPoint(to_point(h.payload, h.vector, query.with_metadata), h.score) for h in hits]

    async def query(self, collection: str, query: StoreQuery) -> list[ScoredPoint]:
        c = self._reading(collection, query.filter)
        if query.sparse is not None and not c.spec.keywords:
            raise no_keywords(collection)
        params = self._search_params(False, c)  # graph searches re-checked on the original vectors
        hits = c.shard.query(to_edge_query(query, to_edge_filter(query.filter), params))
        return [ScoredPoint(to_point(h.payload, h.vector, query.with_metadata), h.score) for h in hits]

    async def facet(
        self, collection: str, key: str, filter: filter_pb2.Filter | None, limit: int
    ) -> list[tuple[str | int | bool, int]]:
        c = self._reading(collection, filter)
        indexed = c.indexed_keys()
        if key not in indexed:  # the engine counts only what an index holds: one is made now,
            if not self._room(c, indexed):  # within the automatic indexes' bound
                raise ApiError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"key: {key[:100]!r} has no index and collection {collection!r} has "
                    f"limits.auto_indexes_per_collection ({self._auto_indexes}) automatic ones: declare "
                    "it in the collection's indexed_fields to count its values",
                )
            async with self._writing(collection) as c:
                c.apply(edge.UpdateOperation.create_field_index(key, INDEX_TYPES["keyword"]))
                c.wanted_indexes.pop(key, None)
        response = c.shard.facet(
            edge.FacetRequest(key, limit=limit, exact=True, filter=to_edge_filter(filter))
        )
        return [(hit.value, hit.count) for hit in response.hits]

    async def scroll(
        self,
        collection: str,
        filter: filter_pb2.Filter | None,
        limit: int,
        page_token: str,
        with_vector: bool,
        with_metadata: bool,
    ) -> Page:
        c = self._reading(collection, filter)
        records, next_offset = c.shard.scroll(
            edge.ScrollRequest(
                offset=point_from_token(page_token) if page_token else None,
                limit=limit,
                filter=to_edge_filter(filter),
                with_payload=True,
                with_vector=with_vector,
            )
        )
        return to_page(records, next_offset, with_metadata)

    async def count(self, collection: str, filter: filter_pb2.Filter | None) -> int:
        c = self._reading(collection, filter)
        return c.shard.count(edge.CountRequest(exact=True, filter=to_edge_filter(filter)))

    # -- beyond the protocol: indexing and backups ------------------------------------------

    async def build_index(self, name: str) -> None:
        """Builds graphs and wanted payload indexes now rather than when writes settle; returns
        when the collection is indexed."""
        await self._indexer.build(self._require(name))

    def index_progress(self) -> list[tuple[str, int, IndexProgress]]:
        """(name, vectors, index progress) of every collection a caller can name, for the
        metrics gauges."""
        out = []
        for name in sorted({n for n in self._collections if not is_generation(n)} | self._aliases.keys()):
            c = self._require(name)
            count = c.shard.count(edge.CountRequest(exact=True))
            out.append((name, count, self._index_progress(c, count)))
        return out

    def index_status(self, name: str) -> IndexStatus:
        c = self._require(name)
        info = c.shard.info()
        return IndexStatus(
            points=info.points_count,
            indexed_vectors=c.indexed_vectors(),
            payload_indexes=sorted(info.payload_schema),
        )

    async def snapshot(self, name: str, dest_dir: Path) -> Path:
        """Writes a consistent backup of the collection to a tar file in dest_dir; writes
        wait only while the shard is copied, reads never."""
        dest_dir.mkdir(parents=True, exist_ok=True)
        staging = self._root / f".snapshot-{uuid.uuid4().hex}"
        try:
            async with self._writing(name) as c:
                c.shard.flush()
                await asyncio.to_thread(shutil.copytree, c.shard_path, staging / "shard-1")
            edge_collection.write_meta(staging, c.spec, "shard-1")
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            archive = dest_dir / f"{name}-{stamp}-{uuid.uuid4().hex[:8]}.tar"
            await asyncio.to_thread(_tar, staging, archive)
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)
        return archive

    async def restore(self, archive: Path, name: str) -> CollectionSpec:
        """Creates collection `name` from a snapshot() archive, or raises ALREADY_EXISTS."""
        _check_name(name)
        if name in self._collections:
            raise already_exists(f"collection {name!r}")
        staging = self._root / f".restore-{uuid.uuid4().hex}"
        try:
            await asyncio.to_thread(_untar, archive, staging)
            restored = edge_collection.load(staging)
            if restored is None:
                raise invalid("archive", f"{archive} is not a collection snapshot")
            restored.shard.close()
            spec = dataclasses.replace(restored.spec, name=name)
            edge_collection.write_meta(staging, spec, restored.shard_dir)
            if name in self._collections:  # created while extracting
                raise already_exists(f"collection {name!r}")
            # No await from the check to the registration: the name cannot be taken between.
            os.rename(staging, self._root / name)
            c = edge_collection.load(self._root / name)
            assert c is not None
            self._collections[name] = c
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, True)
        await asyncio.to_thread(read_in_searched, c.path)
        return spec

    # -- helpers --------------------------------------------------------------------------

    def _index_progress(self, c: EdgeCollection, count: int) -> IndexProgress:
        # The engine's indexed count may include points since replaced or deleted.
        indexed = min(count, c.indexed_vectors())
        return IndexProgress(indexed_vectors=indexed, state=self._indexer.state(c))

    def _search_params(self, exact: bool, c: EdgeCollection) -> edge.SearchParams:
        """Graph searches walk the int8 vectors and rescore `oversampling` x limit candidates
        on the originals; an exact search compares the originals only (quantization ignored)."""
        oversampling = c.spec.layout.quantization_oversampling
        return edge.SearchParams(
            hnsw_ef=self._hnsw.ef,
            exact=exact,
            quantization=edge.QuantizationSearchParams(
                ignore=exact, rescore=True, oversampling=oversampling or self._hnsw.oversampling
            ),
        )

    def _hnsw_of(self, spec: CollectionSpec) -> HnswParams:
        """The store's graph and quantization tuning with the collection's own layout over it."""
        layout, tuned = spec.layout, self._hnsw
        on_disk = layout.on_disk_vectors
        return dataclasses.replace(
            tuned,
            m=tuned.m if layout.hnsw_m is None else layout.hnsw_m,
            ef_construct=tuned.ef_construct if layout.hnsw_ef_construct is None else layout.hnsw_ef_construct,
            quantize=tuned.quantize if layout.quantization is None else layout.quantization == "int8",
            on_disk_vectors=tuned.on_disk_vectors if on_disk is None else on_disk,
        )

    def _require(self, name: str) -> EdgeCollection:
        alias = self._aliases.get(name)
        c = self._collections.get(alias["current"] if alias else name)
        if c is None:
            raise not_found(f"collection {name!r}")
        return c

    def _spec(self, name: str, c: EdgeCollection) -> CollectionSpec:
        """c's spec as `name` shows it: where its points are and what it can roll back to."""
        alias = self._aliases.get(name)
        if alias is None:
            return c.spec
        return dataclasses.replace(
            c.spec,
            name=name,
            physical=c.spec.name,
            previous=alias["previous"] if alias["previous"] in self._collections else "",
            switched_at=alias["switched_at"],
            caught_up_at=alias.get("caught_up_at", 0.0),
        )

    def _rename(self, key: str, new_key: str) -> None:
        """Gives the collection stored under `key` the name `new_key` (its directory stays)."""
        c = self._collections.pop(key)
        c.spec = dataclasses.replace(c.spec, name=new_key)
        edge_collection.write_meta(c.path, c.spec, c.shard_dir)
        self._collections[new_key] = c

    async def _delete(self, key: str) -> None:
        c = self._collections.get(key)
        if c is None:
            return
        await self._indexer.cancel(c)
        async with c.write_lock:
            if c.closed:
                return
            c.closed = True
            c.shard.close()
            trash = self._root / f".deleted-{key}-{uuid.uuid4().hex}"
            os.rename(c.path, trash)  # atomic: a crash leaves the collection gone, not half-deleted
            del self._collections[key]
        await asyncio.to_thread(shutil.rmtree, trash, True)

    @contextlib.asynccontextmanager
    async def _writing(self, name: str) -> AsyncIterator[EdgeCollection]:
        c = self._require(name)
        async with c.write_lock:
            if c.closed:  # deleted while this write waited for the lock
                raise not_found(f"collection {name!r}")
            yield c

    def _reading(self, name: str, filter: filter_pb2.Filter | None) -> EdgeCollection:
        """The collection; a filter key without a payload index gets one at the next build,
        while the collection has fewer than `auto_indexes` automatic ones (any filter is
        still served: a key without an index is scanned)."""
        c = self._require(name)
        if filter is not None:
            keys = filter_keys(filter)
            if keys:
                indexed = c.indexed_keys()
                new = sorted(keys.keys() - c.wanted_indexes.keys() - indexed)
                if new:
                    self._want(c, new, keys, indexed)
        return c

    def _room(self, c: EdgeCollection, indexed: set[str]) -> int:
        """Automatic payload indexes c may still get. Counted from the shard's own indexes
        (which survive a restart) plus those pending, less the ones the collection declared:
        explicit indexed_fields are the admin's call."""
        declared = {k for k, _ in c.spec.indexed_fields}
        automatic = len((indexed | c.wanted_indexes.keys()) - declared)
        return max(0, self._auto_indexes - automatic)

    def _want(self, c: EdgeCollection, new: list[str], kinds: dict, indexed: set[str]) -> None:
        room = self._room(c, indexed)
        if room:
            c.wanted_indexes.update({k: kinds[k] for k in new[:room]})
            self._indexer.poke(c)
        if len(new) > room and c.spec.name not in self._capped:
            self._capped.add(c.spec.name)
            log.warning(
                "collection %r has %d automatic payload indexes, limits.auto_indexes_per_collection: "
                "filters on other keys (such as %r) are served without one",
                c.spec.name,
                self._auto_indexes,
                new[room][:64],
            )


def _check_name(name: str) -> None:
    # The servicer validates names; a store that makes them directories checks again.
    if not name or name.startswith(".") or os.sep in name or name != os.path.basename(name):
        raise invalid("name", f"{name!r} cannot be a collection directory")


def _read_aliases(path: Path) -> dict[str, dict]:
    return json.loads(path.read_text()) if path.exists() else {}


def _lock_dir(root: Path) -> int:
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise unavailable(f"data dir {root} is in use by another process") from None
    return fd


def _tar(src: Path, archive: Path) -> None:
    partial = archive.with_name(archive.name + ".partial")
    with tarfile.open(partial, "w") as tar:
        tar.add(src, arcname=".")
    os.replace(partial, archive)


def _untar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
