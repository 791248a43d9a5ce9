"""Redis cache shared by every gateway replica.

A lookup is one round trip: a Lua script reads the generation, the tenant's generation and the
scope's version and the entries under them. Invalidation is INCR of a version; the admin flush
is INCR of the generation (a tenant's admin: of the tenant's generation). Old entries are never scanned for or deleted: they expire by TTL.
Keys are built inside the script, so this targets a standalone Redis or a Redis with one
primary (not Redis Cluster, whose scripts may only touch declared keys).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from citadel.server.cache.base import Lookup
from citadel.server.tenancy import key_parts

# ARGV: prefix, scope, tenant, keys...; tenant and scope enter keys length-prefixed.
_LOOKUP = """
local function part(s) return string.len(s) .. ':' .. s end
local gen = redis.call('GET', ARGV[1] .. 'gen') or '0'
local tgen = redis.call('GET', ARGV[1] .. 'tgen:' .. part(ARGV[3])) or '0'
local ver = redis.call('GET', ARGV[1] .. 'v:' .. ARGV[2]) or '0'
local prefix = ARGV[1] .. 'e:' .. gen .. ':' .. tgen .. ':' .. part(ARGV[3]) .. ':' .. part(ARGV[2]) .. ':' .. ver .. ':'
local out = {}
for i = 4, #ARGV do
  local key = prefix .. ARGV[i]
  out[#out + 1] = key
  out[#out + 1] = redis.call('GET', key) or false
end
return out
"""


class RedisCache:
    name = "redis"

    def __init__(self, client: aioredis.Redis, prefix: str = "citadel:cache:") -> None:
        self._client = client
        self._prefix = prefix
        self._lookup = client.register_script(_LOOKUP)

    async def lookup(self, scope: str, keys: Sequence[str], tenant: str = "") -> list[Lookup]:
        flat = await self._lookup(keys=[], args=[self._prefix, scope, tenant, *keys])
        return [Lookup(_text(flat[i]), flat[i + 1] or None) for i in range(0, len(flat), 2)]

    async def store(self, entries: Sequence[tuple[str, bytes]], ttl_seconds: float) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for key, value in entries:
                pipe.set(key, value, px=max(1, int(ttl_seconds * 1000)))
            await pipe.execute()

    async def bump(self, scope: str) -> None:
        await self._client.incr(f"{self._prefix}v:{scope}")

    async def flush(self, tenant: str | None = None) -> None:
        if tenant is not None:
            await self._client.incr(f"{self._prefix}tgen:{key_parts(tenant)}")
            return
        await self._client.incr(f"{self._prefix}gen")

    async def usage(self) -> tuple[int, int]:
        # Whole-database figures: counting only our keys would need a scan, which we never do.
        info = await self._client.info("memory")
        return int(await self._client.dbsize()), int(info.get("used_memory", 0))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
