"""The one Redis connection pool a gateway shares between cache, rate limits and job queue."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from citadel.server.config import ConfigError
from citadel.server.redaction import redact_text, redact_url

# Short timeouts: a slow Redis must degrade the cache, not stall every request.
SOCKET_TIMEOUT_SECONDS = 0.5


async def connect(url: str) -> aioredis.Redis:
    """A client for `url`, checked with PING; an unreachable Redis fails start-up, named."""
    try:
        client = aioredis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
            health_check_interval=10,
        )
        await client.ping()
    except (RedisError, OSError, ValueError) as e:
        raise ConfigError(f"redis.url: cannot reach Redis at {redacted(url)}: {redact_text(str(e))}") from None
    return client


def redacted(url: str) -> str:
    """The URL without its credentials, for messages (server/redaction.py)."""
    return redact_url(url)
