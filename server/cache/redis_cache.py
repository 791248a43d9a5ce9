"""Redis cache shared by every gateway replica, on a standalone Redis or a Redis Cluster.

Each scope (a collection; for data of no collection, "" of each tenant) has one small hash, its
meta key, holding the scope's version (`v`) and each tenant's flush generation in it (`t:…`).
Its entries share its hash tag, so a lookup is one script on one node whose KEYS are the meta
key and the entries: nothing global is read, and a hot collection loads only its own slot.
An entry's value starts with the version it was stored under (`<v>.<t>:`); a lookup returns
only values of the current one, and hands back, with each miss, the key and version to store
it under, so a write landing between the two can never make stale data current.

Invalidation is HINCRBY of the scope's version. The admin flush bumps every scope: scopes are
listed in registries (one of every scope, one per tenant of the scopes it used), each scope
entered the first time a tenant looks it up. Old values are never scanned for or deleted:
they are overwritten by the next store, or expire by TTL.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from citadel.server.cache.base import Lookup
from citadel.server.redis_client import hash_tag
from citadel.server.tenancy import key_parts

# KEYS: the scope's meta key, then entries (one hash tag). ARGV: the tenant's field names.
# Returns the stored version, whether the tenant is registered, then each current value.
_LOOKUP = """
local meta = redis.call('HMGET', KEYS[1], 'v', ARGV[1], ARGV[2])
local version = (meta[1] or '0') .. '.' .. (meta[2] or '0') .. ':'
local out = {version, meta[3] and 1 or 0}
for i = 2, #KEYS do
  local value = redis.call('GET', KEYS[i])
  if value and string.sub(value, 1, #version) == version then out[#out + 1] = value else out[#out + 1] = false end
end
return out
"""
REGISTRY_PAGE = 500  # scopes bumped per round trip by a flush
# What separates an entry's Redis key from the version its value must carry (Lookup.key).
_VERSION_SEPARATOR = "|"


class RedisCache:
    name = "redis"

    def __init__(self, client: aioredis.Redis, prefix: str = "citadel:cache:") -> None:
        self._client = client
        self._prefix = prefix
        self._lookup = client.register_script(_LOOKUP)

    def _meta(self, scope: str, tenant: str) -> str:
        # Data of no collection is each tenant's own scope: one shared "" would be a hot key.
        tag = hash_tag("scope", scope) if scope else hash_tag("tenant-data", tenant)
        return f"{self._prefix}{tag}m:{'s' if scope else 'd'}"

    def _tenant_registry(self, tenant: str) -> str:
        return f"{self._prefix}{hash_tag('tenant', tenant)}scopes"

    async def lookup(self, scope: str, keys: Sequence[str], tenant: str = "") -> list[Lookup]:
        meta = self._meta(scope, tenant)
        entries = [f"{meta}:e:{key_parts(tenant)}:{key}" for key in keys]
        flush_field, registered_field = f"t:{key_parts(tenant)}", f"r:{key_parts(tenant)}"
        version, registered, *values = await self._lookup(
            keys=[meta, *entries], args=[flush_field, registered_field]
        )
        if not int(registered):
            await self._register(meta, tenant, registered_field)
        version = _text(version)
        return [
            Lookup(f"{entry}{_VERSION_SEPARATOR}{version}", value[len(version) :] if value else None)
            for entry, value in zip(entries, values, strict=True)
        ]

    async def _register(self, meta: str, tenant: str, registered_field: str) -> None:
        """Enters the scope in the registries a flush reads, before marking it entered: a
        scope marked is always listed. Once per scope and tenant, never on the lookup path
        after that."""
        await self._client.sadd(f"{self._prefix}scopes", meta)
        await self._client.sadd(self._tenant_registry(tenant), meta)
        await self._client.hset(meta, registered_field, 1)

    async def store(self, entries: Sequence[tuple[str, bytes]], ttl_seconds: float) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for handle, value in entries:
                key, _, version = handle.rpartition(_VERSION_SEPARATOR)
                pipe.set(key, version.encode() + value, px=max(1, int(ttl_seconds * 1000)))
            await pipe.execute()

    async def bump(self, scope: str) -> None:
        if scope:
            await self._client.hincrby(self._meta(scope, ""), "v", 1)
            return
        # Every tenant's data of no collection (no write of the gateway's asks for this).
        await self._bump_registered(f"{self._prefix}scopes", "v", only_suffix="m:d")

    async def flush(self, tenant: str | None = None) -> None:
        if tenant is None:
            await self._bump_registered(f"{self._prefix}scopes", "v")
        else:
            await self._bump_registered(self._tenant_registry(tenant), f"t:{key_parts(tenant)}")

    async def _bump_registered(self, registry: str, field: str, only_suffix: str = "") -> None:
        """HINCRBY `field` of every scope in `registry`, a page per round trip (a cluster
        pipeline sends each node its part)."""
        cursor = 0
        while True:
            cursor, metas = await self._client.sscan(registry, cursor, count=REGISTRY_PAGE)
            metas = [m for m in map(_text, metas) if m.endswith(only_suffix)]
            if metas:
                async with self._client.pipeline(transaction=False) as pipe:
                    for meta in metas:
                        pipe.hincrby(meta, field, 1)
                    await pipe.execute()
            if int(cursor) == 0:
                return

    async def usage(self) -> tuple[int, int]:
        # Whole-database figures: counting only our keys would need a scan, which we never do.
        info = await self._client.info("memory")
        return int(await self._client.dbsize()), int(info.get("used_memory", 0))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
