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

import time
from collections.abc import Sequence
from pathlib import Path

import grpc
from qdrant_client import AsyncQdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from citadel.server.errors import ApiError, already_exists, not_found
from citadel.server.redaction import redact_text
from citadel.server.store.base import (
    RESERVED_PAYLOAD_KEY,
    CollectionInfo,
    CollectionSpec,
    Page,
    Point,
    ScoredPoint,
    SearchQuery,
    generation_name,
    is_generation,
)
from citadel.server.store.payload import to_page, to_payload, to_point
from citadel.server.store.point_ids import point_from_token, point_id
from citadel.server.store.qdrant_filter import to_qdrant_filter
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
}
# Upserts go to Qdrant in slices, keeping each request well under its payload limit.
_UPSERT_SLICE = 512


class QdrantStore:
    """VectorStore backed by qdrant-client's async client."""

    def __init__(self, client: AsyncQdrantClient) -> None:
        self._client = client

    @classmethod
    def local(cls, path: Path) -> QdrantStore:
        path.mkdir(parents=True, exist_ok=True)
        return cls(AsyncQdrantClient(path=str(path)))

    @classmethod
    def remote(cls, url: str, api_key: str | None = None, timeout: float = 10.0) -> QdrantStore:
        return cls(AsyncQdrantClient(url=url, api_key=api_key, timeout=int(timeout)))

    async def check_reachable(self) -> None:
        try:
            await self._client.get_collections()
        except (ResponseHandlingException, UnexpectedResponse, OSError) as e:
            # qdrant-client's texts may embed the URL (and a key in its query): redacted.
            raise ApiError(grpc.StatusCode.UNAVAILABLE, f"Qdrant unreachable: {redact_text(str(e))}") from e

    async def close(self) -> None:
        await self._client.close()

    # -- collections ----------------------------------------------------------------------

    async def create_collection(self, spec: CollectionSpec) -> None:
        if await self._client.collection_exists(spec.name):
            raise already_exists(f"collection {spec.name!r}")
        # A re-embed creates generations by their own names; a caller's collection starts as
        # generation 0 behind an alias of its name.
        physical = spec.name if is_generation(spec.name) else generation_name(spec.name, "0")
        await self._client.create_collection(
            physical,
            vectors_config=models.VectorParams(size=spec.dimension, distance=_DISTANCES[spec.distance]),
            metadata={RESERVED_PAYLOAD_KEY: _metadata(spec, physical)},
        )
        for key, kind in spec.indexed_fields:
            await self._client.create_payload_index(physical, key, field_schema=_INDEX_TYPES[kind])
        if physical != spec.name:
            await self._client.update_collection_aliases(
                change_aliases_operations=[_create_alias(spec.name, physical)]
            )

    async def get_collection(self, name: str) -> CollectionInfo:
        info = await self._collection_info(name)
        return CollectionInfo(spec=_spec(name, info), vector_count=info.points_count or 0)

    async def list_collections(self) -> list[CollectionSpec]:
        names = {c.name for c in (await self._client.get_collections()).collections}
        names = {n for n in names if not is_generation(n)} | (await self._aliases()).keys()
        specs = []
        for name in sorted(names):
            try:
                specs.append(_spec(name, await self._client.get_collection(name)))
            except (UnexpectedResponse, ValueError):
                continue  # deleted between the two calls
        return specs

    async def delete_collection(self, name: str) -> None:
        await self._require(name)
        prefix = generation_name(name, "")
        every = [c.name for c in (await self._client.get_collections()).collections]
        generations = [n for n in every if n.startswith(prefix)]
        if name in await self._aliases():
            await self._client.update_collection_aliases(change_aliases_operations=[_delete_alias(name)])
        else:
            generations.append(name)
        for generation in generations:
            await self._client.delete_collection(generation)

    async def switch(self, name: str, generation: str) -> None:
        target = await self._collection_info(generation)
        current = (await self._aliases()).get(name)
        if current == generation:
            return  # switched already (a resumed job asks again)
        superseded = ""
        if current is not None:
            superseded = _spec(current, await self._client.get_collection(current)).previous
        ours = {
            **(target.config.metadata or {}).get(RESERVED_PAYLOAD_KEY, {}),
            "previous": current or "",
            "switched_at": time.time(),
        }
        await self._client.update_collection(generation, metadata={RESERVED_PAYLOAD_KEY: ours})
        if current is None:
            # A collection made before generations is a real collection of this name, and an
            # alias cannot shadow one: it is deleted first, so calls fail for that moment and
            # nothing is kept for rollback.
            await self._client.delete_collection(name)
            switch = [_create_alias(name, generation)]
        else:
            switch = [_delete_alias(name), _create_alias(name, generation)]
        await self._client.update_collection_aliases(change_aliases_operations=switch)  # atomic
        if superseded and superseded not in (current, generation):
            await self._client.delete_collection(superseded)

    # -- points ---------------------------------------------------------------------------

    async def upsert(self, collection: str, points: Sequence[Point]) -> None:
        await self._require(collection)
        now = time.time()
        structs = [
            models.PointStruct(
                id=point_id(p.id),
                vector=list(p.vector or ()),
                payload=to_payload(p, now),
            )
            for p in points
        ]
        for start in range(0, len(structs), _UPSERT_SLICE):
            await self._client.upsert(collection, structs[start : start + _UPSERT_SLICE], wait=True)

    async def retrieve(self, collection: str, ids: Sequence[str]) -> list[Point]:
        await self._require(collection)
        records = await self._client.retrieve(
            collection, [point_id(i) for i in dict.fromkeys(ids)], with_payload=True, with_vectors=True
        )
        return [to_point(r.payload, r.vector, True) for r in records]

    async def delete_ids(self, collection: str, ids: Sequence[str]) -> int:
        await self._require(collection)
        pids = [point_id(i) for i in dict.fromkeys(ids)]
        existing = await self._client.retrieve(collection, pids, with_payload=False, with_vectors=False)
        if existing:
            await self._client.delete(
                collection, models.PointIdsList(points=[r.id for r in existing]), wait=True
            )
        return len(existing)

    async def delete_matching(self, collection: str, filter: filter_pb2.Filter) -> int:
        await self._require(collection)
        qfilter = to_qdrant_filter(filter)
        matching = (await self._client.count(collection, count_filter=qfilter, exact=True)).count
        if matching:
            await self._client.delete(collection, models.FilterSelector(filter=qfilter), wait=True)
        return matching

    async def search(self, collection: str, query: SearchQuery) -> list[ScoredPoint]:
        try:
            result = await self._client.query_points(
                collection,
                query=_floats(query.vector),
                limit=query.limit,
                offset=query.offset or None,
                query_filter=to_qdrant_filter(query.filter),
                score_threshold=query.score_threshold,
                with_payload=True,  # the original id lives in the payload
                with_vectors=query.with_vector,
                search_params=models.SearchParams(exact=True) if query.exact else None,
            )
        except (ValueError, UnexpectedResponse):
            # A missing collection fails the search (ValueError in local mode, 404 from a
            # server): it is asked about only then, not with a round trip before every search.
            await self._require(collection)
            raise
        if query.with_metadata:
            return [ScoredPoint(to_point(p.payload, p.vector, True), p.score) for p in result.points]
        return [_scored_without_metadata(p) for p in result.points]

    async def scroll(
        self,
        collection: str,
        filter: filter_pb2.Filter | None,
        limit: int,
        page_token: str,
        with_vector: bool,
        with_metadata: bool,
    ) -> Page:
        await self._require(collection)
        records, next_offset = await self._client.scroll(
            collection,
            scroll_filter=to_qdrant_filter(filter),
            limit=limit,
            offset=point_from_token(page_token) if page_token else None,
            with_payload=True,
            with_vectors=with_vector,
        )
        return to_page(records, next_offset, with_metadata)

    async def count(self, collection: str, filter: filter_pb2.Filter | None) -> int:
        await self._require(collection)
        return (await self._client.count(collection, count_filter=to_qdrant_filter(filter), exact=True)).count

    # -- helpers --------------------------------------------------------------------------

    async def _aliases(self) -> dict[str, str]:
        """alias name -> the collection it points at"""
        response = await self._client.get_aliases()
        return {a.alias_name: a.collection_name for a in response.aliases}

    async def _require(self, name: str) -> None:
        if not await self._client.collection_exists(name):
            raise not_found(f"collection {name!r}")

    async def _collection_info(self, name: str) -> models.CollectionInfo:
        await self._require(name)
        return await self._client.get_collection(name)


def _scored_without_metadata(p: models.ScoredPoint) -> ScoredPoint:
    """What to_point(payload, vector, False) gives, without copying the payload to drop the
    metadata nobody asked for: a search reads just our entry (id, write time, text, model)."""
    ours = (p.payload or {}).get(RESERVED_PAYLOAD_KEY) or {}
    vector = p.vector
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
        "physical": physical,
    }


def _create_alias(name: str, collection: str) -> models.CreateAliasOperation:
    return models.CreateAliasOperation(
        create_alias=models.CreateAlias(collection_name=collection, alias_name=name)
    )


def _delete_alias(name: str) -> models.DeleteAliasOperation:
    return models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=name))


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
        physical=ours.get("physical", name),
        previous=ours.get("previous", ""),
        switched_at=float(ours.get("switched_at", 0.0)),
    )
