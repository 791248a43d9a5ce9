"""Collections an earlier Citadel made on Qdrant, before the registry (store/qdrant_registry.py):
each was a physical collection of its own, named `docs~0` behind an alias `docs` (or, before
re-embedding existed, a plain collection `docs`), with its spec in Qdrant's collection metadata.

They are adopted into the registry as dedicated placements the first time a name misses the
registry, or a listing sees them: nothing is copied or moved, so nothing can be lost, and none
of them disappears from ListCollections.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from functools import partial

import grpc
from qdrant_client import AsyncQdrantClient, models

from citadel.server.errors import ApiError
from citadel.server.store.base import (
    RESERVED_PAYLOAD_KEY,
    CollectionSpec,
    generation_name,
    is_generation,
)
from citadel.server.store.layout import CollectionLayout
from citadel.server.store.qdrant_calls import QdrantCalls
from citadel.server.store.qdrant_location import Location
from citadel.server.store.qdrant_placement import tenant_of
from citadel.server.store.qdrant_registry import Entry, Registry

log = logging.getLogger("citadel")

INTERNAL_PREFIX = "_citadel"  # the registry and the shared collections: never a caller's
# The generation a plain collection (no alias) becomes in the registry: its points stay where
# they are, in the collection of the name itself.
PLAIN_TAG = "legacy"
# How long Qdrant's own collection and alias names are trusted: a name no registry entry holds
# is looked up there, so a caller naming missing collections costs one listing per interval,
# not one per call. Old-layout collections only come from gateways of an earlier version.
NAMES_CACHE_SECONDS = 2.0

DISTANCE_NAMES = {
    models.Distance.COSINE: "cosine",
    models.Distance.DOT: "dot",
    models.Distance.EUCLID: "euclid",
}


class Legacy:
    def __init__(self, client: AsyncQdrantClient, calls: QdrantCalls, registry: Registry) -> None:
        self._client = client
        self._calls = calls
        self._registry = registry
        self._listed: tuple[float, frozenset[str], dict[str, str]] | None = None

    async def adopt(self, name: str) -> Entry | None:
        """The registry's entry for `name` after adopting the old-layout collection of that
        name; None when Qdrant has none."""
        if name.startswith(INTERNAL_PREFIX):
            return None
        collections, aliases = await self._qdrant_names()
        if name not in collections and name not in aliases:
            return None
        physical = aliases.get(name, name)
        try:
            info = await self._calls.run(
                partial(self._client.get_collection, physical), name, idempotent=True
            )
        except ApiError as e:
            if e.code == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        spec = spec_of(name, info)
        where = Location(collection=physical)
        if is_generation(name):
            entries = [Entry(name, dataclasses.replace(spec, physical=""), where)]
        else:
            generation = physical if physical != name else generation_name(name, PLAIN_TAG)
            generation_spec = dataclasses.replace(
                spec, name=generation, physical="", previous="", switched_at=0.0, caught_up_at=0.0
            )
            entries = [
                Entry(generation, generation_spec, where),
                Entry(name, dataclasses.replace(spec, physical=generation), where),
            ]
        written = [await self._registry.insert(entry) for entry in entries]  # a replica adopting
        if any(written):  # it at the same time writes the same; one of them says so
            log.info(
                "collection %r of an earlier layout adopted as a dedicated placement (%r)", name, physical
            )
        return await self._registry.get(name)

    async def names(self, tenant: str | None) -> list[str]:
        """Old-layout collection names Qdrant holds (of `tenant` when given), adopted or not."""
        collections, aliases = await self._qdrant_names()
        names = collections | aliases.keys()
        return sorted(
            n
            for n in names
            if not n.startswith(INTERNAL_PREFIX)
            and not is_generation(n)
            and (tenant is None or tenant_of(n) == tenant)
        )

    async def leftovers(self, name: str) -> list[str]:
        """Physical collections of `name`'s old-layout generations (`name~...`) and its alias,
        for deleting them with it."""
        listed = await self._calls.run(self._client.get_collections, idempotent=True)
        prefix = generation_name(name, "")
        return [c.name for c in listed.collections if c.name.startswith(prefix)]

    async def drop_alias(self, name: str) -> None:
        self._listed = None
        if name in await self.aliases():
            drop = models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=name))
            await self._calls.run(partial(self._client.update_collection_aliases, [drop]), name)

    async def aliases(self) -> dict[str, str]:
        """alias name -> the collection it points at"""
        response = await self._calls.run(self._client.get_aliases, idempotent=True)
        return {a.alias_name: a.collection_name for a in response.aliases}

    async def _qdrant_names(self) -> tuple[frozenset[str], dict[str, str]]:
        """Qdrant's collection names and aliases, as listed at most NAMES_CACHE_SECONDS ago."""
        if self._listed is None or time.monotonic() - self._listed[0] >= NAMES_CACHE_SECONDS:
            listed = await self._calls.run(self._client.get_collections, idempotent=True)
            collections = frozenset(c.name for c in listed.collections)
            self._listed = (time.monotonic(), collections, await self.aliases())
        return self._listed[1], self._listed[2]


def spec_of(name: str, info: models.CollectionInfo) -> CollectionSpec:
    """The spec an old-layout collection kept in its Qdrant metadata."""
    params = info.config.params.vectors
    ours = (info.config.metadata or {}).get(RESERVED_PAYLOAD_KEY, {})
    return CollectionSpec(
        name=name,
        dimension=params.size,
        distance=DISTANCE_NAMES[params.distance],
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
