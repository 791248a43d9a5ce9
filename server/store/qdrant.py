"""VectorStore on qdrant-client: embedded local mode in the data dir, or a Qdrant server or
cluster when a URL is given. Both go through AsyncQdrantClient, so there is one code path.

Collection settings Qdrant does not know (description, indexed fields, creation time, the
bound model and its fingerprint) are kept in Qdrant's own collection metadata, so replicas of
the gateway share them, and no reserved point skews counts, scrolls or searches.

A collection `docs` is a Qdrant alias of the physical collection `docs~0` (its first
generation): a re-embed builds another generation and switches the alias in one
update_aliases call, which Qdrant applies atomically for every replica. Collections made
before generations are real collections of the name itself (see `switch`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import grpc
from qdrant_client import AsyncQdrantClient, models

from citadel.server.errors import ApiError, already_exists, not_found
from citadel.server.redaction import redact_url
from citadel.server.store.base import (
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
from citadel.server.store.point_ids import point_from_token, point_id
from citadel.server.store.qdrant_calls import QdrantCalls
from citadel.server.store.qdrant_filter import to_qdrant_filter
from citadel.server.store.qdrant_options import QdrantOptions
from citadel.server.store.qdrant_query import to_query_points
from citadel.vector.v1 import filter_pb2

_DISTANCES = {
    "cosine": models.Distance.COSINE,
    "dot": models.Distance.DOT,
    "euclid": models.Distance.EUCLID,
}
_DISTANCE_NAMES = {v: k for k, v in _DISTANCES.items()}
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
# A generation 0 this old whose name is still free is what a failed create left behind.
_ABANDONED_AFTER_SECONDS = 60.0
# The reachability probe (start-up, and every second while serving) waits at most this long.
_PROBE_SECONDS = 5.0


class QdrantStore:
    """VectorStore backed by qdrant-client's async client."""

    def __init__(
        self, client: AsyncQdrantClient, options: QdrantOptions | None = None, where: str = ""
    ) -> None:
        self._client = client
        self._options = options or QdrantOptions()
        # Every call to Qdrant goes through here: its failures become statuses naming the
        # collection or Qdrant (`where`; "": local mode, with no transport to retry).
        self._calls = QdrantCalls(
            where or "Qdrant (local mode)", self._options.timeout_seconds, remote=bool(where)
        )
        # Physical collection -> its options: the defaults with its own layout over them
        # (read consistency, search params), learnt when it is created or its info is read.
        self._collection_options: dict[str, QdrantOptions] = {}

    @classmethod
    def local(cls, path: Path) -> QdrantStore:
        path.mkdir(parents=True, exist_ok=True)
        return cls(AsyncQdrantClient(path=str(path)))

    @classmethod
    def remote(
        cls, url: str, api_key: str | None = None, options: QdrantOptions | None = None
    ) -> QdrantStore:
        options = options or QdrantOptions()
        where = f"Qdrant at {redact_url(url)}"
        if options.prefer_grpc:
            where += f" (gRPC port {options.grpc_port})"
        return cls(AsyncQdrantClient(url=url, api_key=api_key, **options.client_kwargs()), options, where)

    async def check_reachable(self) -> None:
        await self._calls.once(
            self._client.get_collections, min(self._options.timeout_seconds, _PROBE_SECONDS)
        )

    async def close(self) -> None:
        await self._client.close()

    # -- collections ----------------------------------------------------------------------

    async def create_collection(self, spec: CollectionSpec) -> None:
        # An alias created over an existing alias silently moves it: the name is checked first.
        exists = partial(self._client.collection_exists, spec.name)
        if await self._calls.run(exists, spec.name, idempotent=True):
            raise already_exists(f"collection {spec.name!r}")
        # A re-embed creates generations by their own names; a caller's collection starts as
        # generation 0 behind an alias of its name. Of two replicas creating one collection,
        # Qdrant lets one make the physical collection; the other is answered ALREADY_EXISTS.
        physical = spec.name if is_generation(spec.name) else generation_name(spec.name, "0")
        options = self._options.check_layout(spec.layout)
        make = partial(
            self._client.create_collection,
            physical,
            vectors_config=options.vector_params(spec.dimension, _DISTANCES[spec.distance]),
            **options.collection_kwargs(),
            sparse_vectors_config=(
                {SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)} if spec.keywords else None
            ),
            metadata={RESERVED_PAYLOAD_KEY: _metadata(spec, physical)},
        )
        await self._make(make, spec.name, physical)
        self._collection_options[physical] = options
        try:
            await self._finish_creating(spec, physical)
        except Exception:
            # Half made and not yet visible: drop it, so the name is free for another attempt.
            with contextlib.suppress(Exception):
                await self._calls.run(partial(self._client.delete_collection, physical), physical)
            raise

    async def _make(self, make: partial, name: str, physical: str) -> None:
        try:
            await self._calls.run(make, name)
        except ApiError as e:
            if (
                e.code != grpc.StatusCode.ALREADY_EXISTS
                or physical == name
                or not await self._abandoned(physical)
            ):
                raise
            # A create that failed midway left generation 0 behind, its name never made.
            await self._calls.run(partial(self._client.delete_collection, physical), physical)
            await self._calls.run(make, name)

    async def _abandoned(self, physical: str) -> bool:
        try:
            info = await self._collection_info(physical)
        except ApiError:
            return False
        made = float((info.config.metadata or {}).get(RESERVED_PAYLOAD_KEY, {}).get("created_at", 0.0))
        return time.time() - made > _ABANDONED_AFTER_SECONDS

    async def _finish_creating(self, spec: CollectionSpec, physical: str) -> None:
        """Payload indexes, then the alias that makes the collection visible."""
        for key, kind in spec.indexed_fields:
            index = partial(self._client.create_payload_index, physical, key, field_schema=_INDEX_TYPES[kind])
            await self._calls.run(index, spec.name, idempotent=True)
        if spec.keywords:
            await self._client.create_payload_index(physical, TEXT_FIELD, field_schema=_INDEX_TYPES["text"])
        if physical != spec.name:
            alias = partial(self._client.update_collection_aliases, [_create_alias(spec.name, physical)])
            await self._calls.run(alias, spec.name)

    async def get_collection(self, name: str) -> CollectionInfo:
        info = await self._collection_info(name)
        spec = _spec(name, info)
        self._collection_options[spec.home] = self._options.with_layout(spec.layout)
        return CollectionInfo(
            spec=spec, vector_count=info.points_count or 0, index_progress=_index_progress(info)
        )

    async def list_collections(self) -> list[CollectionSpec]:
        names = {n for n in await self._collection_names() if not is_generation(n)} | (
            await self._aliases()
        ).keys()
        specs = []
        for name in sorted(names):
            try:
                specs.append(_spec(name, await self._collection_info(name)))
            except ApiError as e:
                if e.code != grpc.StatusCode.NOT_FOUND:
                    raise
                continue  # deleted between the two calls
        return specs

    async def delete_collection(self, name: str) -> None:
        # Whether it exists is read from the listings this needs anyway, not asked first.
        every, aliases = await self._collection_names(), await self._aliases()
        if name not in aliases and name not in every:
            raise not_found(f"collection {name!r}")
        prefix = generation_name(name, "")
        generations = [n for n in every if n.startswith(prefix)]
        if name in aliases:
            await self._calls.run(
                partial(self._client.update_collection_aliases, [_delete_alias(name)]), name
            )
        else:
            generations.append(name)
        for generation in generations:
            await self._calls.run(partial(self._client.delete_collection, generation), name)

    async def switch(self, name: str, generation: str, caught_up_at: float = 0.0) -> None:
        target = await self._collection_info(generation)
        current = (await self._aliases()).get(name)
        if current == generation:
            return  # switched already (a resumed job asks again)
        superseded = ""
        if current is not None:
            superseded = _spec(current, await self._collection_info(current)).previous
        ours = {
            **(target.config.metadata or {}).get(RESERVED_PAYLOAD_KEY, {}),
            "previous": current or "",
            "switched_at": time.time(),
            "caught_up_at": caught_up_at,
        }
        stamp = partial(self._client.update_collection, generation, metadata={RESERVED_PAYLOAD_KEY: ours})
        await self._calls.run(stamp, generation, idempotent=True)
        if current is None:
            # A collection made before generations is a real collection of this name, and an
            # alias cannot shadow one: it is deleted first, so calls fail for that moment and
            # nothing is kept for rollback.
            await self._calls.run(partial(self._client.delete_collection, name), name)
            switch = [_create_alias(name, generation)]
        else:
            switch = [_delete_alias(name), _create_alias(name, generation)]
        await self._calls.run(partial(self._client.update_collection_aliases, switch), name)  # atomic
        if superseded and superseded not in (current, generation):
            await self._calls.run(partial(self._client.delete_collection, superseded), superseded)

    # -- points ---------------------------------------------------------------------------

    async def upsert(self, collection: str, points: Sequence[Point]) -> None:
        keywords = SPARSE in ((await self._collection_info(collection)).config.params.sparse_vectors or {})
        now = time.time()
        structs = [
            models.PointStruct(
                id=point_id(p.id),
                vector=point_vectors(p, keywords, _sparse_vector),
                payload=to_payload(p, now),
            )
            for p in points
        ]
        for start in range(0, len(structs), _UPSERT_SLICE):
            # Point ids are deterministic: an upsert sent twice writes the same points.
            write = partial(
                self._client.upsert, collection, structs[start : start + _UPSERT_SLICE], wait=True
            )
            await self._calls.run(write, collection, idempotent=True)

    async def retrieve(self, collection: str, ids: Sequence[str]) -> list[Point]:
        pids = [point_id(i) for i in dict.fromkeys(ids)]
        read = partial(
            self._client.retrieve,
            collection,
            pids,
            with_payload=True,
            with_vectors=True,
            **self._reads(collection),
        )
        return [
            to_point(r.payload, r.vector, True)
            for r in await self._calls.run(read, collection, idempotent=True)
        ]

    async def delete_ids(self, collection: str, ids: Sequence[str]) -> int:
        pids = [point_id(i) for i in dict.fromkeys(ids)]
        read = partial(
            self._client.retrieve,
            collection,
            pids,
            with_payload=False,
            with_vectors=False,
            **self._reads(collection),
        )
        existing = await self._calls.run(read, collection, idempotent=True)
        if existing:
            selector = models.PointIdsList(points=[r.id for r in existing])
            await self._calls.run(
                partial(self._client.delete, collection, selector, wait=True), collection, idempotent=True
            )
        return len(existing)

    async def delete_matching(self, collection: str, filter: filter_pb2.Filter) -> int:
        qfilter = to_qdrant_filter(filter)
        count = partial(self._client.count, collection, count_filter=qfilter, exact=True)
        matching = (await self._calls.run(count, collection, idempotent=True)).count
        if matching:
            # Not retried: points written meanwhile could match a second attempt.
            selector = models.FilterSelector(filter=qfilter)
            await self._calls.run(partial(self._client.delete, collection, selector, wait=True), collection)
        return matching

    async def search(self, collection: str, query: SearchQuery) -> list[ScoredPoint]:
        # A missing collection fails the search itself: no round trip asks about it first.
        search = partial(
            self._client.query_points,
            collection,
            query=_floats(query.vector),
            limit=query.limit,
            offset=query.offset or None,
            query_filter=to_qdrant_filter(query.filter),
            score_threshold=query.score_threshold,
            with_payload=True,  # the original id lives in the payload
            with_vectors=query.with_vector,
            search_params=self._options_of(collection).search_params(query.exact),
            **self._reads(collection),
        )
        result = await self._calls.run(search, collection, idempotent=True)
        if query.with_metadata:
            return [ScoredPoint(to_point(p.payload, p.vector, True), p.score) for p in result.points]
        return [_scored_without_metadata(p) for p in result.points]

    async def query(self, collection: str, query: StoreQuery) -> list[ScoredPoint]:
        if query.sparse is not None:
            info = await self._collection_info(collection)
            if SPARSE not in (info.config.params.sparse_vectors or {}):
                raise no_keywords(collection)
        ask = partial(
            self._client.query_points, collection, **to_query_points(query), **self._reads(collection)
        )
        result = await self._calls.run(ask, collection, idempotent=True)
        return [
            ScoredPoint(to_point(p.payload, p.vector, query.with_metadata), p.score) for p in result.points
        ]

    async def facet(
        self, collection: str, key: str, filter: filter_pb2.Filter | None, limit: int
    ) -> list[tuple[str | int | bool, int]]:
        count = partial(
            self._client.facet,
            collection,
            key,
            facet_filter=to_qdrant_filter(filter),
            limit=limit,
            exact=True,
            **self._reads(collection),
        )
        response = await self._calls.run(count, collection, idempotent=True)
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
        read = partial(
            self._client.scroll,
            collection,
            scroll_filter=to_qdrant_filter(filter),
            limit=limit,
            offset=point_from_token(page_token) if page_token else None,
            with_payload=True,
            with_vectors=with_vector,
            **self._reads(collection),
        )
        records, next_offset = await self._calls.run(read, collection, idempotent=True)
        return to_page(records, next_offset, with_metadata)

    async def count(self, collection: str, filter: filter_pb2.Filter | None) -> int:
        count = partial(self._client.count, collection, count_filter=to_qdrant_filter(filter), exact=True)
        return (await self._calls.run(count, collection, idempotent=True)).count

    # -- helpers --------------------------------------------------------------------------

    async def _aliases(self) -> dict[str, str]:
        """alias name -> the collection it points at"""
        response = await self._calls.run(self._client.get_aliases, idempotent=True)
        return {a.alias_name: a.collection_name for a in response.aliases}

    async def _collection_names(self) -> list[str]:
        """Every physical collection (generations too), not aliases."""
        response = await self._calls.run(self._client.get_collections, idempotent=True)
        return [c.name for c in response.collections]

    async def _collection_info(self, name: str) -> models.CollectionInfo:
        """The collection (or the one its alias names); NOT_FOUND from Qdrant's own answer."""
        return await self._calls.run(partial(self._client.get_collection, name), name, idempotent=True)

    def _options_of(self, collection: str) -> QdrantOptions:
        """The physical collection's options when known: the servicer reads a collection's
        spec (get_collection, at most seconds old) before it reads its points."""
        return self._collection_options.get(collection, self._options)

    def _reads(self, collection: str) -> dict:
        return self._options_of(collection).read_kwargs()  # read consistency


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


def _metadata(spec: CollectionSpec, physical: str) -> dict:
    return {
        "description": spec.description,
        "indexed_fields": [list(f) for f in spec.indexed_fields],
        "created_at": spec.created_at,
        "embedding_model": spec.embedding_model,
        "fingerprint": [list(v) for v in spec.fingerprint],
        "store_text": spec.store_text,
        "keywords": spec.keywords,
        "physical": physical,
        "layout": spec.layout.chosen(),
    }


def _sparse_vector(indices: list[int], values: list[float]) -> models.SparseVector:
    return models.SparseVector(indices=indices, values=values)


def _create_alias(name: str, collection: str) -> models.CreateAliasOperation:
    return models.CreateAliasOperation(
        create_alias=models.CreateAlias(collection_name=collection, alias_name=name)
    )


def _delete_alias(name: str) -> models.DeleteAliasOperation:
    return models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=name))


# Qdrant's collection status as index progress: yellow optimizes now, grey has optimizations
# pending (until the next write or an explicit trigger), red failed one.
_INDEXING_STATES: dict[models.CollectionStatus, IndexingState] = {
    models.CollectionStatus.GREEN: "indexed",
    models.CollectionStatus.YELLOW: "building",
    models.CollectionStatus.GREY: "pending",
    models.CollectionStatus.RED: "failed",
}


def _index_progress(info: models.CollectionInfo) -> IndexProgress:
    return IndexProgress(
        indexed_vectors=info.indexed_vectors_count or 0,
        state=_INDEXING_STATES.get(info.status, "pending"),
    )


def _spec(name: str, info: models.CollectionInfo) -> CollectionSpec:
    params = info.config.params.vectors
    ours = (info.config.metadata or {}).get(RESERVED_PAYLOAD_KEY, {})
    return CollectionSpec(
        name=name,
        dimension=params.size,
        distance=_DISTANCE_NAMES[params.distance],
        description=ours.get("description", ""),
        indexed_fields=tuple((k, t) for k, t in ours.get("indexed_fields", [])),
        created_at=float(ours.get("created_at", 0.0)),
        embedding_model=ours.get("embedding_model", ""),
        fingerprint=tuple(tuple(v) for v in ours.get("fingerprint", ())),
        store_text=ours.get("store_text", True),
        keywords=ours.get("keywords", False),
        physical=ours.get("physical", name),
        previous=ours.get("previous", ""),
        switched_at=float(ours.get("switched_at", 0.0)),
        caught_up_at=float(ours.get("caught_up_at", 0.0)),
        layout=CollectionLayout.from_chosen(ours.get("layout")),
    )
