"""VectorStore on qdrant-client: embedded local mode in the data dir, or a Qdrant server or
cluster when a URL is given. Both go through AsyncQdrantClient, so there is one code path.

Every store name (a caller's collection `acme.docs`, or a generation of it `acme.docs~0`) has
an entry in the registry (store/qdrant_registry.py): its spec and its placement
(store/qdrant_placement.py). By default a collection is a partition of a physical collection
shared by every collection of its vector layout, filtered by on every call; a collection may
have a physical collection of its own instead (dedicated). Callers cannot tell the two apart.

A collection resolves to a generation (its first is `<name>~0`): a re-embed builds another
generation and switches the name's registry entry to it in one conditional point write, which
every replica reads. Collections an earlier Citadel made (a physical collection per name, behind
an alias) are adopted as dedicated placements (store/qdrant_legacy.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import TypeVar

import grpc
from qdrant_client import AsyncQdrantClient, models

from citadel.server.errors import ApiError, already_exists, not_found
from citadel.server.redaction import redact_url
from citadel.server.store.base import (
    GENERATION,
    RESERVED_PAYLOAD_KEY,
    CollectionInfo,
    CollectionSpec,
    IndexingState,
    IndexProgress,
    Page,
    Point,
    ScoredPoint,
    SearchQuery,
    StoreQuery,
    generation_name,
    is_generation,
)
from citadel.server.store.keywords import SPARSE, TEXT_FIELD, no_keywords, point_vectors
from citadel.server.store.layout import CollectionLayout
from citadel.server.store.payload import to_page, to_payload, to_point
from citadel.server.store.point_ids import point_from_token
from citadel.server.store.qdrant_calls import QdrantCalls
from citadel.server.store.qdrant_legacy import Legacy
from citadel.server.store.qdrant_location import PARTITION_FIELD, TENANT_FIELD, Location, new_location
from citadel.server.store.qdrant_options import QdrantOptions
from citadel.server.store.qdrant_placement import PlacementPolicy, shared_collection
from citadel.server.store.qdrant_query import to_query_points
from citadel.server.store.qdrant_registry import Entry, Registry
from citadel.vector.v1 import filter_pb2

T = TypeVar("T")

_DISTANCES = {
    "cosine": models.Distance.COSINE,
    "dot": models.Distance.DOT,
    "euclid": models.Distance.EUCLID,
}
_INDEX_TYPES = {
    "keyword": models.PayloadSchemaType.KEYWORD,
    "integer": models.PayloadSchemaType.INTEGER,
    "float": models.PayloadSchemaType.FLOAT,
    "bool": models.PayloadSchemaType.BOOL,
    # As the embedded engine tokenises text (store/edge_collection.py TEXT_INDEX).
    "text": models.TextIndexParams(
        type=models.TextIndexType.TEXT,
        tokenizer=models.TokenizerType.WORD,
        lowercase=True,
        ascii_folding=True,
        phrase_matching=True,
    ),
}
# Upserts go to Qdrant in slices, keeping each request well under its payload limit.
_UPSERT_SLICE = 512
# A generation 0 entry this old whose name has none is what a create stopped midway left.
_ABANDONED_AFTER_SECONDS = 60.0
# The reachability probe (start-up, and every second while serving) waits at most this long.
_PROBE_SECONDS = 5.0
# A write whose collection was deleted and made anew while it was written goes again, this often.
_WRITE_ATTEMPTS = 3
# Graph links per tenant in a shared collection, none across tenants (Qdrant's multitenancy
# advice: every search there is filtered by its tenant); store.qdrant_hnsw_m overrides it.
_SHARED_PAYLOAD_M = 16


class QdrantStore:
    """VectorStore backed by qdrant-client's async client."""

    def __init__(
        self,
        client: AsyncQdrantClient,
        options: QdrantOptions | None = None,
        where: str = "",
        placement: PlacementPolicy | None = None,
    ) -> None:
        self._client = client
        self._options = options or QdrantOptions()
        self._placement = placement or PlacementPolicy()
        # Every call to Qdrant goes through here: its failures become statuses naming the
        # collection or Qdrant (`where`; "": local mode, with no transport to retry).
        self._calls = QdrantCalls(
            where or "Qdrant (local mode)", self._options.timeout_seconds, remote=bool(where)
        )
        self._registry = Registry(client, self._calls)
        self._legacy = Legacy(client, self._calls, self._registry)
        self._shared_ready: set[str] = set()  # shared collections known to exist, with indexes
        self._layout_options: dict[CollectionLayout, QdrantOptions] = {}

    @classmethod
    def local(cls, path: Path, placement: PlacementPolicy | None = None) -> QdrantStore:
        path.mkdir(parents=True, exist_ok=True)
        return cls(AsyncQdrantClient(path=str(path)), placement=placement)

    @classmethod
    def remote(
        cls,
        url: str,
        api_key: str | None = None,
        options: QdrantOptions | None = None,
        placement: PlacementPolicy | None = None,
    ) -> QdrantStore:
        options = options or QdrantOptions()
        where = f"Qdrant at {redact_url(url)}"
        if options.prefer_grpc:
            where += f" (gRPC port {options.grpc_port})"
        client = AsyncQdrantClient(url=url, api_key=api_key, **options.client_kwargs())
        return cls(client, options, where, placement)

    async def check_reachable(self) -> None:
        await self._calls.once(
            self._client.get_collections, min(self._options.timeout_seconds, _PROBE_SECONDS)
        )

    async def close(self) -> None:
        await self._client.close()

    # -- collections ----------------------------------------------------------------------

    async def create_collection(self, spec: CollectionSpec) -> None:
        options = self._options.check_layout(spec.layout)  # refused before anything is made
        # A re-embed creates generations by their own names; a caller's collection starts as
        # generation 0, whose entry is written first: of two replicas creating one name, the
        # one whose entry Qdrant inserted goes on, the other is answered ALREADY_EXISTS.
        generation = spec.name if is_generation(spec.name) else generation_name(spec.name, "0")
        await self._ensure_free(spec.name, generation)
        why = self._placement.dedicated_because(spec) or await self._index_clash(spec)
        where = new_location(spec, generation, dedicated=bool(why))
        if where.shared:
            await self._make_shared(spec, where.collection)
        else:
            await self._make_dedicated(spec, where.collection, generation, options)
        made = time.time()
        try:
            ours = await self._registry.insert(
                Entry(
                    generation, dataclasses.replace(spec, name=generation, physical=""), where, made_at=made
                )
            )
            if ours and generation != spec.name:
                named = Entry(spec.name, dataclasses.replace(spec, physical=generation), where, made_at=made)
                if not await self._registry.insert(named):
                    await self._registry.mark_deleting([generation])
                    await self._registry.remove([generation])
                    ours = False
            if not ours:
                raise already_exists(f"collection {spec.name!r}")
        except BaseException:
            await self._drop(spec.name, where)  # nothing refers to it: the name is free for another attempt
            raise

    async def _ensure_free(self, name: str, generation: str) -> None:
        there = await self._registry.get(name)
        if there is not None and there.deleting:
            # A delete stopped midway (or running on another replica): callers see no such
            # collection, so creating it finishes that delete rather than answering ALREADY_EXISTS.
            await self._finish_delete(name, await self._entries_of(name, there))
            there = None
        if there is not None or await self._legacy.adopt(name) is not None:
            raise already_exists(f"collection {name!r}")
        if generation == name:
            return
        left = await self._registry.get(generation)
        if left is None:
            return
        if time.time() - left.made_at < _ABANDONED_AFTER_SECONDS:
            raise already_exists(f"collection {name!r}")  # another replica is creating it now
        await self._delete_entries(name, [left])  # a create stopped between its two entries

    async def _index_clash(self, spec: CollectionSpec) -> str:
        """Why `spec`'s payload indexes cannot share its layout's collection: an index there is
        of one type for every collection in it, claimed by the first to declare the key."""
        shared = shared_collection(spec)
        for key, kind in spec.indexed_fields:
            claimed = await self._registry.claim_index(shared, key, kind)
            if claimed != kind:
                return f"its field {key!r} is {kind} where another collection indexes it as {claimed}"
        return ""

    async def _make_shared(self, spec: CollectionSpec, shared: str) -> None:
        """The layout's shared collection with its tenant, partition and text indexes, made on
        first use (a racing replica's is as good), and `spec`'s payload indexes in it."""
        if shared not in self._shared_ready:
            exists = partial(self._client.collection_exists, shared)
            if not await self._calls.run(exists, spec.name, idempotent=True):
                kwargs = self._options.collection_kwargs()
                kwargs["hnsw_config"] = models.HnswConfigDiff(
                    m=0,
                    payload_m=self._options.hnsw_m or _SHARED_PAYLOAD_M,
                    ef_construct=self._options.hnsw_ef_construct or None,
                )
                make = partial(
                    self._client.create_collection,
                    shared,
                    vectors_config=self._options.vector_params(spec.dimension, _DISTANCES[spec.distance]),
                    sparse_vectors_config=_sparse_config(spec),
                    **kwargs,
                )
                try:
                    await self._calls.run(make, spec.name)
                except ApiError as e:
                    if e.code != grpc.StatusCode.ALREADY_EXISTS:
                        raise
            tenant = models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True)
            await self._index(spec.name, shared, TENANT_FIELD, tenant)
            await self._index(spec.name, shared, PARTITION_FIELD, models.PayloadSchemaType.KEYWORD)
            if spec.keywords:
                await self._index(spec.name, shared, TEXT_FIELD, _INDEX_TYPES["text"])
            self._shared_ready.add(shared)
        for key, kind in spec.indexed_fields:
            # Not waited for: a new key's index is built over every tenant's points, which in a
            # large shared collection outlasts store.qdrant_timeout_seconds (a create answered
            # UNAVAILABLE, retried, building again). Qdrant applies it in order with later writes;
            # filters on the key work meanwhile, unindexed.
            await self._index(spec.name, shared, key, _INDEX_TYPES[kind], wait=False)

    async def _make_dedicated(
        self, spec: CollectionSpec, physical: str, generation: str, options: QdrantOptions
    ) -> None:
        make = partial(
            self._client.create_collection,
            physical,
            vectors_config=options.vector_params(spec.dimension, _DISTANCES[spec.distance]),
            sparse_vectors_config=_sparse_config(spec),
            # For an operator reading Qdrant directly; the registry is what the gateway reads.
            # made_at: a physical collection no entry names yet is dropped as a leftover only
            # once a create could no longer be writing its entry (delete_collection).
            metadata={
                RESERVED_PAYLOAD_KEY: {
                    "generation": generation,
                    "layout": spec.layout.chosen(),
                    "made_at": time.time(),
                }
            },
            **options.collection_kwargs(),
        )
        await self._calls.run(make, spec.name)
        try:
            for key, kind in spec.indexed_fields:
                await self._index(spec.name, physical, key, _INDEX_TYPES[kind])
            if spec.keywords:
                await self._index(spec.name, physical, TEXT_FIELD, _INDEX_TYPES["text"])
        except BaseException:
            await self._drop(spec.name, Location(collection=physical))
            raise

    async def _index(self, name: str, physical: str, key: str, schema, wait: bool = True) -> None:
        index = partial(self._client.create_payload_index, physical, key, field_schema=schema, wait=wait)
        await self._calls.run(index, name, idempotent=True)

    async def get_collection(self, name: str) -> CollectionInfo:
        entry = await self._live(name, fresh=True)
        where = entry.where
        if not where.shared:
            info = await self._physical_info(name, where)
            return CollectionInfo(
                entry.spec, info.points_count or 0, _index_progress(info, info.points_count or 0)
            )
        count, info = await asyncio.gather(self._count(name, where, None), self._physical_info(name, where))
        return CollectionInfo(entry.spec, count, _index_progress(info, count))

    async def list_collections(
        self, tenant: str | None = None, after: str = "", limit: int = 0
    ) -> list[CollectionSpec]:
        """Collections (of `tenant` when given, "" the tenant-less ones) named after `after`,
        sorted by name, at most `limit` (0: all): the registry's names, with Qdrant's own for
        old-layout collections, then whole entries for that page alone."""
        registered = set(await self._registry.collection_names(tenant))
        names = registered | set(await self._legacy.names(tenant))
        page = sorted(n for n in names if n > after)[: limit or None]
        entries = {e.name: e for e in await self._registry.entries([n for n in page if n in registered])}
        for name in page:
            if name not in entries:
                adopted = await self._legacy.adopt(name)
                if adopted is not None and not adopted.deleting:
                    entries[name] = adopted
        return [entries[n].spec for n in page if n in entries]

    async def delete_collection(self, name: str) -> None:
        """Marks the entries deleting (calls see NOT_FOUND at once), drops their points, then
        the entries: a delete that stops midway is finished by the next one, or by a create."""
        entries = await self._entries_of(name, await self._registry.get(name))
        if not entries:
            adopted = await self._legacy.adopt(name)
            if adopted is None:
                raise not_found(f"collection {name!r}")
            entries = await self._entries_of(name, adopted)
        await self._finish_delete(name, entries)

    async def _entries_of(self, name: str, entry: Entry | None) -> list[Entry]:
        """The entries a delete of `name` removes: a generation's own (`entry`), a collection's
        with its generations'; none when `name` has no entry."""
        if entry is None:
            return []
        return [entry] if is_generation(name) else await self._registry.family(name)

    async def _finish_delete(self, name: str, entries: list[Entry]) -> None:
        await self._delete_entries(name, entries)
        if not is_generation(name):
            await self._legacy.drop_alias(name)
            for physical in await self._legacy.leftovers(name):  # generations no entry names
                if await self._abandoned(name, physical):
                    await self._drop(name, Location(collection=physical))

    async def _abandoned(self, name: str, physical: str) -> bool:
        """Whether `physical`, a physical collection of `name`'s generations, is left over: no
        entry names it, and it is of the old layout (never adopted) or was made long enough
        ago that no create is still between making it and writing its entry."""
        if await self._registry.referenced(physical):
            return False
        if physical.count(GENERATION) == 1:
            return True  # old layout: `<name>~<tag>`; this layout's are `<generation>~<tag>`
        try:
            info = await self._physical_info(name, Location(collection=physical))
        except ApiError as e:
            if e.code == grpc.StatusCode.NOT_FOUND:
                return False  # dropped meanwhile
            raise
        ours = (info.config.metadata or {}).get(RESERVED_PAYLOAD_KEY) or {}
        return time.time() - float(ours.get("made_at", 0.0)) >= _ABANDONED_AFTER_SECONDS

    async def _delete_entries(self, name: str, entries: list[Entry]) -> None:
        names = [e.name for e in entries]
        await self._registry.mark_deleting(names)
        for where in dict.fromkeys(e.where for e in entries):
            await self._drop(name, where)
        await self._registry.remove(names)

    async def switch(self, name: str, generation: str, caught_up_at: float = 0.0) -> None:
        target = await self._live(generation, fresh=True)
        current = await self._live(name, fresh=True)
        if current.generation == generation:
            return  # switched already (a resumed job asks again)
        spec = dataclasses.replace(
            target.spec,
            name=name,
            physical=generation,
            previous=current.generation,
            switched_at=time.time(),
            caught_up_at=caught_up_at,
        )
        moved = Entry(name, spec, target.where, made_at=current.made_at)
        if not await self._registry.replace(moved, over_generation=current.generation):  # atomic
            now = await self._registry.get(name)
            if now is not None and now.generation == generation:
                return
            raise ApiError(
                grpc.StatusCode.ABORTED,
                f"collection {name!r} was switched or deleted by another call during this switch",
            )
        superseded = current.spec.previous
        if superseded and superseded not in (current.generation, generation):
            try:
                await self.delete_collection(superseded)
            except ApiError as e:
                if e.code != grpc.StatusCode.NOT_FOUND:
                    raise

    # -- points ---------------------------------------------------------------------------

    async def upsert(self, collection: str, points: Sequence[Point]) -> None:
        for _ in range(_WRITE_ATTEMPTS):
            entry = await self._live(collection)
            try:
                await self._write(collection, entry, points)
            except ApiError as e:
                if not await self._moved(e, entry):
                    raise
                continue
            if not entry.where.shared or await self._still_placed(entry):
                return
        raise ApiError(
            grpc.StatusCode.ABORTED,
            f"collection {collection!r} was deleted and made again during this write: send it again",
        )

    async def _write(self, collection: str, entry: Entry, points: Sequence[Point]) -> None:
        where = entry.where
        now = time.time()
        structs = [
            models.PointStruct(
                id=where.point_id(p.id),
                vector=point_vectors(p, entry.spec.keywords, _sparse_vector),
                payload=where.stamp(to_payload(p, now)),
            )
            for p in points
        ]
        for start in range(0, len(structs), _UPSERT_SLICE):
            # Point ids are deterministic: an upsert sent twice writes the same points.
            write = partial(
                self._client.upsert, where.collection, structs[start : start + _UPSERT_SLICE], wait=True
            )
            await self._calls.run(write, collection, idempotent=True)

    async def _still_placed(self, entry: Entry) -> bool:
        """After a write to a partition: whether its generation still has it. A dedicated
        collection deleted meanwhile fails the write itself; a partition deleted meanwhile
        does not, so the points just written, nobody's now, are dropped."""
        fresh = await self._registry.get(entry.generation)
        if fresh is not None and not fresh.deleting and fresh.where == entry.where:
            return True
        await self._drop(entry.name, entry.where)
        self._registry.forget(entry.name)
        return False

    async def _moved(self, error: ApiError, entry: Entry) -> bool:
        """Whether `error` came from a location `entry` (as cached) no longer names: the
        collection was deleted, or deleted and made again (another dimension, another
        physical collection), by another replica since this one read it."""
        if error.code not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
            return False
        fresh = await self._registry.get(entry.name)
        if fresh is not None and not fresh.deleting and fresh.where == entry.where:
            return False
        if entry.where.shared:
            await self._drop(entry.name, entry.where)  # a dead partition: whatever reached it is nobody's
        return True

    async def _read(self, collection: str, read: Callable[[Entry], Awaitable[T]]) -> T:
        """`read(entry)`, again with the registry's entry as it is now when the cached one
        named a location the collection has left."""
        entry = await self._live(collection)
        try:
            return await read(entry)
        except ApiError as e:
            if not await self._moved(e, entry):
                raise
        return await read(await self._live(collection, fresh=True))

    async def retrieve(self, collection: str, ids: Sequence[str]) -> list[Point]:
        async def read(entry: Entry) -> list[Point]:
            records = await self._records(collection, entry, ids, with_data=True)
            return [to_point(r.payload, r.vector, True) for r in records]

        return await self._read(collection, read)

    async def delete_ids(self, collection: str, ids: Sequence[str]) -> int:
        async def delete(entry: Entry) -> int:
            existing = await self._records(collection, entry, ids, with_data=False)
            if existing:
                selector = models.PointIdsList(points=[r.id for r in existing])
                call = partial(self._client.delete, entry.where.collection, selector, wait=True)
                await self._calls.run(call, collection, idempotent=True)
            return len(existing)

        return await self._read(collection, delete)

    async def _records(self, collection: str, entry: Entry, ids: Sequence[str], with_data: bool) -> list:
        """The points of `ids` that `entry`'s location holds (payloads and vectors `with_data`)."""
        where = entry.where
        call = partial(
            self._client.retrieve,
            where.collection,
            [where.point_id(i) for i in dict.fromkeys(ids)],
            with_payload=with_data,
            with_vectors=with_data,
            **self._options_of(entry).read_kwargs(),
        )
        return await self._calls.run(call, collection, idempotent=True)

    async def delete_matching(self, collection: str, filter: filter_pb2.Filter) -> int:
        async def delete(entry: Entry) -> int:
            where = entry.where
            qfilter = where.filter(filter)
            count = partial(self._client.count, where.collection, count_filter=qfilter, exact=True)
            matching = (await self._calls.run(count, collection, idempotent=True)).count
            if matching:
                # Not retried: points written meanwhile could match a second attempt.
                selector = models.FilterSelector(filter=qfilter)
                await self._calls.run(
                    partial(self._client.delete, where.collection, selector, wait=True), collection
                )
            return matching

        return await self._read(collection, delete)

    async def search(self, collection: str, query: SearchQuery) -> list[ScoredPoint]:
        async def read(entry: Entry) -> list[ScoredPoint]:
            where, options = entry.where, self._options_of(entry)
            call = partial(
                self._client.query_points,
                where.collection,
                query=_floats(query.vector),
                limit=query.limit,
                offset=query.offset or None,
                query_filter=where.filter(query.filter),
                score_threshold=query.score_threshold,
                with_payload=True,  # the original id lives in the payload
                with_vectors=query.with_vector,
                search_params=options.search_params(query.exact),
                **options.read_kwargs(),
            )
            result = await self._calls.run(call, collection, idempotent=True)
            if query.with_metadata:
                return [ScoredPoint(to_point(p.payload, p.vector, True), p.score) for p in result.points]
            return [_scored_without_metadata(p) for p in result.points]

        return await self._read(collection, read)

    async def query(self, collection: str, query: StoreQuery) -> list[ScoredPoint]:
        async def read(entry: Entry) -> list[ScoredPoint]:
            if query.sparse is not None and not entry.spec.keywords:
                raise no_keywords(collection)
            options = self._options_of(entry)
            call = partial(
                self._client.query_points,
                entry.where.collection,
                **to_query_points(query, entry.where, options.search_params(exact=False)),
                **options.read_kwargs(),
            )
            result = await self._calls.run(call, collection, idempotent=True)
            return [
                ScoredPoint(to_point(p.payload, p.vector, query.with_metadata), p.score)
                for p in result.points
            ]

        return await self._read(collection, read)

    async def facet(
        self, collection: str, key: str, filter: filter_pb2.Filter | None, limit: int
    ) -> list[tuple[str | int | bool, int]]:
        async def read(entry: Entry) -> list[tuple[str | int | bool, int]]:
            where = entry.where
            call = partial(
                self._client.facet,
                where.collection,
                key,
                facet_filter=where.filter(filter),
                limit=limit,
                exact=True,
                **self._options_of(entry).read_kwargs(),
            )
            response = await self._calls.run(call, collection, idempotent=True)
            return [(hit.value, hit.count) for hit in response.hits]

        return await self._read(collection, read)

    async def scroll(
        self,
        collection: str,
        filter: filter_pb2.Filter | None,
        limit: int,
        page_token: str,
        with_vector: bool,
        with_metadata: bool,
    ) -> Page:
        offset = point_from_token(page_token) if page_token else None

        async def read(entry: Entry) -> Page:
            where = entry.where
            call = partial(
                self._client.scroll,
                where.collection,
                scroll_filter=where.filter(filter),
                limit=limit,
                offset=offset,
                with_payload=True,
                with_vectors=with_vector,
                **self._options_of(entry).read_kwargs(),
            )
            records, next_offset = await self._calls.run(call, collection, idempotent=True)
            return to_page(records, next_offset, with_metadata)

        return await self._read(collection, read)

    async def count(self, collection: str, filter: filter_pb2.Filter | None) -> int:
        return await self._read(collection, lambda entry: self._count(collection, entry.where, filter))

    # -- helpers --------------------------------------------------------------------------

    async def _live(self, name: str, fresh: bool = False) -> Entry:
        """`name`'s registry entry (as read at most a second ago unless `fresh`), adopting an
        old-layout collection on a miss; NOT_FOUND when there is none, or it is being deleted."""
        entry = await (self._registry.get(name) if fresh else self._registry.resolve(name))
        if entry is None:
            entry = await self._legacy.adopt(name)
        if entry is None or entry.deleting:
            raise not_found(f"collection {name!r}")
        return entry

    async def _count(self, name: str, where: Location, filter: filter_pb2.Filter | None) -> int:
        qfilter = where.filter(filter)
        count = partial(self._client.count, where.collection, count_filter=qfilter, exact=True)
        return (await self._calls.run(count, name, idempotent=True)).count

    async def _physical_info(self, name: str, where: Location) -> models.CollectionInfo:
        """The physical collection's info; NOT_FOUND (naming the caller's collection) from
        Qdrant's own answer."""
        return await self._calls.run(
            partial(self._client.get_collection, where.collection), name, idempotent=True
        )

    async def _drop(self, name: str, where: Location) -> None:
        """A location's points: a partition's by filter, a dedicated collection whole. A
        partition's delete is not waited for: with millions of points it outlasts
        store.qdrant_timeout_seconds, and nothing needs it done: by the time its drop is asked for
        no live entry names the partition, and a partition is never made again."""
        if where.shared:
            call = partial(
                self._client.delete, where.collection, models.FilterSelector(filter=where.scope()), wait=False
            )
        else:
            call = partial(self._client.delete_collection, where.collection)
        try:
            await self._calls.run(call, name, idempotent=True)
        except ApiError as e:
            if e.code != grpc.StatusCode.NOT_FOUND:
                raise

    def _options_of(self, entry: Entry) -> QdrantOptions:
        """The defaults with the collection's own layout over them (read consistency, search
        params): a shared collection's collections have none of their own."""
        layout = entry.spec.layout
        options = self._layout_options.get(layout)
        if options is None:
            options = self._layout_options[layout] = self._options.with_layout(layout)
        return options


def _sparse_config(spec: CollectionSpec) -> dict | None:
    return {SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)} if spec.keywords else None


def _scored_without_metadata(p: models.ScoredPoint) -> ScoredPoint:
    """What to_point(payload, vector, False) gives, without copying the payload to drop the
    metadata nobody asked for: a search reads just our entry (id, write time, text, model)."""
    ours = (p.payload or {}).get(RESERVED_PAYLOAD_KEY) or {}
    vector = p.vector.get("") if isinstance(p.vector, dict) else p.vector  # beside a BM25 vector
    # Point(id, vector, metadata, created_at, text, model, embedded_at), positionally: this
    # runs once per hit.
    return ScoredPoint(
        Point(
            ours.get("id", ""),
            list(vector) if vector is not None else None,
            None,
            float(ours.get("created_at", 0.0)),
            ours.get("text"),
            ours.get("model", ""),
            float(ours.get("embedded_at", 0.0)),
        ),
        p.score,
    )


def _floats(vector) -> list[float]:
    """A list of Python floats. `list()` of a float32 array would be numpy scalars, which
    qdrant-client's pydantic models check one by one (~0.5 ms for 384 values, against a few
    µs for plain floats); `tolist()` gives the same values as floats. The servicer's checked
    query vector is already a list of floats and is passed as it is."""
    if type(vector) is list:
        return vector
    return vector.tolist() if hasattr(vector, "tolist") else [float(x) for x in vector]


def _sparse_vector(indices: list[int], values: list[float]) -> models.SparseVector:
    return models.SparseVector(indices=indices, values=values)


# Qdrant's collection status as index progress: yellow optimizes now, grey has optimizations
# pending (until the next write or an explicit trigger), red failed one.
_INDEXING_STATES: dict[models.CollectionStatus, IndexingState] = {
    models.CollectionStatus.GREEN: "indexed",
    models.CollectionStatus.YELLOW: "building",
    models.CollectionStatus.GREY: "pending",
    models.CollectionStatus.RED: "failed",
}


def _index_progress(info: models.CollectionInfo, count: int) -> IndexProgress:
    """The physical collection's progress; for a partition its indexed count is bounded by
    its own size (Qdrant counts the shared collection's)."""
    return IndexProgress(
        indexed_vectors=min(info.indexed_vectors_count or 0, count),
        state=_INDEXING_STATES.get(info.status, "pending"),
    )
