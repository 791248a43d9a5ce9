"""Token buckets in Redis, shared by every gateway replica.

One Lua script refills and takes atomically, using Redis's own clock so replicas with skewed
clocks agree. A bucket's key expires once it would be full again, so idle callers cost nothing.
The script touches only its one declared key, so on a Redis Cluster (redis.cluster) each bucket
lives on whichever primary owns its slot and buckets spread over the primaries.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from citadel.server.ratelimit.buckets import Decision, Limit

_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = math.min(tonumber(ARGV[3]), burst)
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


class RedisBuckets:
    def __init__(self, client: aioredis.Redis, prefix: str = "citadel:rl:") -> None:
        self._client = client
        self._prefix = prefix
        self._take = client.register_script(_TAKE)

    async def take(self, key: str, limit: Limit, cost: float = 1) -> Decision:
        allowed, wait = await self._take(keys=[self._prefix + key], args=[limit.rate, limit.burst, cost])
        return Decision(bool(int(allowed)), float(wait))
