"""The registry of collections on Qdrant: one point per store name in the vector-less Qdrant
collection `_citadel_registry`, holding the name's CollectionSpec and its Location.

Names are callers' collections (`acme.docs`, kind "collection") and generations of them
(`acme.docs~0`, kind "generation"). A collection's entry repeats the location of the generation
it resolves to, so resolving a name is one point read and a re-embed's switch is one point
write (atomic per name, and conditional: it applies only over the generation it replaces).

Every gateway replica reads the same registry. Each keeps what it read for CACHE_SECONDS for the
calls on points; what decides (get_collection, create, switch, delete, a write's check after
writing) reads the registry itself. Locations are unique per create, so a replica's stale copy
can only reach a deleted collection's partition, never another collection's points.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import typing
import uuid
from dataclasses import dataclass
from functools import partial

import grpc
from qdrant_client import AsyncQdrantClient, models

from citadel.server.errors import ApiError
from citadel.server.store.base import CollectionSpec, is_generation
from citadel.server.store.qdrant_calls import QdrantCalls
from citadel.server.store.qdrant_location import Location
from citadel.server.store.qdrant_placement import NO_TENANT, family_of, tenant_of

REGISTRY = "_citadel_registry"
# How long a replica trusts what it read for calls on points (see the module's doc).
CACHE_SECONDS = 1.0
_SCROLL_PAGE = 1000
_NAMESPACE = uuid.UUID("3a8f2c61-5d7e-5b1f-9c04-7e2b6a1d8f53")
_INDEXED = ("name", "kind", "family", "tenant", "where.collection")


@dataclass(frozen=True)
class Entry:
    name: str
    spec: CollectionSpec
    where: Location
    deleting: bool = False  # a delete has begun: the name is gone for callers
    made_at: float = 0.0  # unix seconds the entry was written first

    @property
    def generation(self) -> str:
        """The generation whose points `where` holds: a collection's current one, or itself."""
        return self.spec.home


class Registry:
    def __init__(self, client: AsyncQdrantClient, calls: QdrantCalls) -> None:
        self._client = client
        self._calls = calls
        self._ready = False
        self._cache: dict[str, tuple[float, Entry]] = {}

    async def ready(self) -> None:
        """Makes the registry collection on first use (a racing replica's is as good)."""
        if self._ready:
            return
        exists = partial(self._client.collection_exists, REGISTRY)
        if not await self._calls.run(exists, idempotent=True):
            try:
                await self._calls.run(partial(self._client.create_collection, REGISTRY, vectors_config={}))
            except ApiError as e:
                if e.code != grpc.StatusCode.ALREADY_EXISTS:
                    raise
        # Every time, not only after making it: a replica that made it may have stopped before
        # its indexes, and making an index that exists is a no-op.
        for key in _INDEXED:
            index = partial(
                self._client.create_payload_index,
                REGISTRY,
                key,
                field_schema=models.PayloadSchemaType.KEYWORD,
            )
            await self._calls.run(index, idempotent=True)
        self._ready = True

    # -- reads ----------------------------------------------------------------------------

    async def get(self, name: str) -> Entry | None:
        """The entry as the registry holds it now."""
        await self.ready()
        read = partial(self._client.retrieve, REGISTRY, [_point_id(name)], with_payload=True)
        records = await self._calls.run(read, idempotent=True)
        if not records:
            self._cache.pop(name, None)
            return None
        entry = _entry(records[0].payload)
        self._cache[name] = (time.monotonic(), entry)
        return entry

    async def resolve(self, name: str) -> Entry | None:
        """The entry as read at most CACHE_SECONDS ago: for calls on points."""
        cached = self._cache.get(name)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        return await self.get(name)

    def forget(self, name: str) -> None:
        self._cache.pop(name, None)

    async def collection_names(self, tenant: str | None = None) -> list[str]:
        """Callers' collections (not generations, not being deleted), of `tenant` when given
        ("" the tenant-less namespace): one scroll reading names only (an entry's spec holds
        its model's fingerprint, ~15 KB at 384 dimensions)."""
        must = [_match("kind", "collection")]
        if tenant is not None:
            must.append(_match("tenant", tenant or NO_TENANT))
        where = models.Filter(must=must, must_not=[_match("deleting", True)])
        return [r.payload["name"] for r in await self._records(where, ["name"])]

    async def entries(self, names: list[str]) -> list[Entry]:
        """The entries of `names` (a page of them), those not being deleted: one read by point
        id (an entry's id is derived from its name)."""
        if not names:
            return []
        await self.ready()
        read = partial(self._client.retrieve, REGISTRY, [_point_id(n) for n in names], with_payload=True)
        entries = [_entry(r.payload) for r in await self._calls.run(read, idempotent=True)]
        return [e for e in entries if not e.deleting]

    async def family(self, name: str) -> list[Entry]:
        """The entries of a collection and of its generations."""
        return await self._scroll(models.Filter(must=[_match("family", name)]))

    async def referenced(self, collection: str) -> bool:
        """Whether any entry's points are in the physical collection `collection`."""
        count = partial(
            self._client.count,
            REGISTRY,
            count_filter=models.Filter(must=[_match("where.collection", collection)]),
            exact=True,
        )
        return (await self._calls.run(count, idempotent=True)).count > 0

    async def _scroll(self, where: models.Filter) -> list[Entry]:
        return [_entry(r.payload) for r in await self._records(where, True)]

    async def _records(self, where: models.Filter, payload: bool | list[str]) -> list[models.Record]:
        """Every registry point `where` selects, with `payload` (True: all of it), paged."""
        await self.ready()
        records, offset = [], None
        while True:
            read = partial(
                self._client.scroll,
                REGISTRY,
                scroll_filter=where,
                limit=_SCROLL_PAGE,
                offset=offset,
                with_payload=payload,
            )
            page, offset = await self._calls.run(read, idempotent=True)
            records += page
            if offset is None:
                return records

    # -- writes ---------------------------------------------------------------------------

    async def insert(self, entry: Entry) -> bool:
        """Writes `entry` unless its name has one already; whether it was written (of two
        replicas creating one name, exactly one is)."""
        there = await self._write(entry, models.UpdateMode.INSERT_ONLY)
        return there is not None and there.where == entry.where and not there.deleting

    async def replace(self, entry: Entry, over_generation: str) -> bool:
        """Writes `entry` if its name still resolves to `over_generation` (a switch applies
        once, over what its caller read); whether it was written."""
        only_over = models.Filter(
            must=[_match("generation", over_generation)], must_not=[_match("deleting", True)]
        )
        there = await self._write(entry, models.UpdateMode.UPDATE_ONLY, only_over)
        return there is not None and there.generation == entry.generation and there.where == entry.where

    async def _write(
        self, entry: Entry, mode: models.UpdateMode, only_over: models.Filter | None = None
    ) -> Entry | None:
        """Writes `entry` as `mode` allows; the name's entry as the registry holds it after."""
        await self.ready()
        write = partial(
            self._client.upsert,
            REGISTRY,
            [_point(entry)],
            wait=True,
            update_mode=mode,
            update_filter=only_over,
        )
        await self._calls.run(write, idempotent=True)
        return await self.get(entry.name)

    async def claim_index(self, collection: str, key: str, kind: str) -> str:
        """The type of `key`'s payload index in the shared physical `collection`: `kind` if it
        has none yet (it is claimed, for every replica), else the one claimed first."""
        await self.ready()
        pid = str(uuid.uuid5(_NAMESPACE, f"index\0{collection}\0{key}"))
        claim = models.PointStruct(
            id=pid, vector={}, payload={"kind": "index", "collection": collection, "key": key, "type": kind}
        )
        write = partial(
            self._client.upsert, REGISTRY, [claim], wait=True, update_mode=models.UpdateMode.INSERT_ONLY
        )
        await self._calls.run(write, idempotent=True)
        [record] = await self._calls.run(partial(self._client.retrieve, REGISTRY, [pid]), idempotent=True)
        return record.payload["type"]

    async def mark_deleting(self, names: list[str]) -> None:
        """Hides `names` from callers. By filter, not by ids: an entry another replica's delete
        removed meanwhile is passed over (Qdrant answers 404 for a missing id)."""
        if names:
            mark = partial(
                self._client.set_payload,
                REGISTRY,
                payload={"deleting": True},
                points=_named(names),
                wait=True,
            )
            await self._calls.run(mark, idempotent=True)
        for n in names:
            self.forget(n)

    async def remove(self, names: list[str]) -> None:
        """Removes the entries of `names` that are marked deleting: a name made again since
        (its delete finished by another replica, then created) keeps its new entry."""
        if names:
            marked = _named(names)
            marked.must.append(_match("deleting", True))
            drop = partial(self._client.delete, REGISTRY, models.FilterSelector(filter=marked), wait=True)
            await self._calls.run(drop, idempotent=True)
        for n in names:
            self.forget(n)


# -- the payload of an entry --------------------------------------------------------------


def _point_id(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


def _named(names: list[str]) -> models.Filter:
    return models.Filter(must=[models.HasIdCondition(has_id=[_point_id(n) for n in names])])


def _match(key: str, value: str | bool) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _point(entry: Entry) -> models.PointStruct:
    payload = {
        "name": entry.name,
        "kind": "generation" if is_generation(entry.name) else "collection",
        "family": family_of(entry.name),
        "tenant": tenant_of(entry.name) or NO_TENANT,
        "generation": entry.generation,
        "spec": encode_spec(entry.spec),
        "where": entry.where.as_payload(),
        "deleting": entry.deleting,
        "made_at": entry.made_at or time.time(),
    }
    return models.PointStruct(id=_point_id(entry.name), vector={}, payload=payload)


def _entry(payload: dict) -> Entry:
    return Entry(
        name=payload["name"],
        spec=decode_spec(payload["spec"]),
        where=Location.from_payload(payload["where"]),
        deleting=bool(payload.get("deleting", False)),
        made_at=float(payload.get("made_at", 0.0)),
    )


def encode_spec(spec: CollectionSpec) -> dict:
    """Every field of the spec, those added after this was written included (as JSON)."""
    return dataclasses.asdict(spec)


def decode_spec(data: dict) -> CollectionSpec:
    """The spec back from JSON: lists become the tuples the spec holds, nested specs their
    dataclasses; fields the registry lacks (written by an older gateway) keep their defaults,
    fields this gateway does not know (written by a newer one) are left out."""
    return _decode(CollectionSpec, data)


def _decode(cls: type, data: dict):
    return cls(**{name: _value(hint, data[name]) for name, hint in _fields(cls) if name in data})


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, typing.Any], ...]:
    """A dataclass's fields with their resolved types: resolving them took most of the time of
    decoding an entry, and ListCollections decodes every entry of a tenant."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))


def _value(hint, value):
    if value is None:
        return None
    for candidate in (hint, *typing.get_args(hint)):  # X, or X | None
        if dataclasses.is_dataclass(candidate) and isinstance(value, dict):
            return _decode(candidate, value)
    return _tuples(value)


def _tuples(value):
    if not isinstance(value, list):
        return value
    if not value or not isinstance(value[0], list):
        # A spec's lists hold one kind each (a fingerprint's vector: hundreds of numbers,
        # copied at once; ListCollections decodes every entry of a tenant).
        return tuple(value)
    return tuple(_tuples(v) for v in value)
