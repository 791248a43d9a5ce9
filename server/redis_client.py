"""The one Redis client a gateway shares between cache, rate limits and job queue.

A standalone Redis (or one primary) by default; with `redis.cluster = true` a Redis Cluster
through redis-py's cluster client, which routes each command to the node owning its keys. Every
Lua script the gateway runs declares all the keys it touches, and keys a script (or a pipeline
meant to be one round trip) uses together share a hash tag (`hash_tag`), so the same code runs
on both: on a cluster nothing is CROSSSLOT, on a standalone Redis the tags are just characters.

Every connection of the pool tells an ErrorSignal when it cannot connect, send or read: the
dependency watcher (dependencies.py) listens, so the first failed cache lookup, rate-limit
take or queue call marks Redis unavailable at once, without waiting for its next probe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from citadel.server.config import ConfigError
from citadel.server.redaction import redact_text, redact_url
from citadel.server.tenancy import key_parts

# Short timeouts: a slow Redis must degrade the cache, not stall every request.
SOCKET_TIMEOUT_SECONDS = 0.5
# What a connection raises when Redis is unreachable or too slow (not a refused command).
OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class ErrorSignal:
    """Where a client's connection failures are told; `listener` is set by whoever watches."""

    def __init__(self) -> None:
        self.listener: Callable[[BaseException], None] | None = None

    def __call__(self, error: BaseException) -> None:
        if self.listener is not None:
            self.listener(error)


async def connect(url: str, signal: ErrorSignal | None = None, cluster: bool = False) -> aioredis.Redis:
    """A client for `url` (with `cluster`, for the Redis Cluster `url` is one node of), checked
    with PING; an unreachable Redis fails start-up, named."""
    setting = "redis.url"
    try:
        if cluster:
            setting = "redis.url (redis.cluster = true)"
            client = _cluster_client(url, signal)
            await client.initialize()  # reads the slot map: a node that is no cluster fails here
        else:
            client = aioredis.from_url(
                url,
                socket_timeout=SOCKET_TIMEOUT_SECONDS,
                socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
                health_check_interval=10,
                # A pooled connection made before Redis restarted fails on its next use ("closed
                # by server"); one immediate retry on a new connection serves that call.
                retry=Retry(NoBackoff(), 1),
                retry_on_error=[RedisConnectionError],
            )
            if signal is not None:
                # Before the first connection is made: pooled connections are reused, never remade.
                pool = client.connection_pool
                pool.connection_class = _signalling(pool.connection_class, signal)
        await client.ping()
    except (RedisError, RedisClusterException, OSError, ValueError) as e:
        raise ConfigError(
            f"{setting}: cannot reach Redis at {redacted(url)}: {redact_text(str(e))}"
        ) from None
    return client


def _cluster_client(url: str, signal: ErrorSignal | None) -> RedisCluster:
    client = RedisCluster.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        health_check_interval=10,
        # A moved slot or a failed-over primary: a few quick retries, each re-reading the slot
        # map, well inside one call's budget.
        retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), 3),
    )
    if signal is not None:
        # Each node's connections, those of nodes found later included, are made from these.
        manager = client.nodes_manager
        connection_class = _signalling(manager.connection_kwargs.get("connection_class"), signal)
        manager.connection_kwargs["connection_class"] = connection_class
        for node in client.startup_nodes:
            node.connection_class = connection_class
    return client


def hash_tag(*parts: str) -> str:
    """`{…}`: keys holding it are in one cluster slot, whatever else they hold. A digest of the
    parts (tenant, job id, scope), so a caller's braces can never cut the tag short and every
    tag is the same short length."""
    return "{" + hashlib.blake2b(key_parts(*parts).encode(), digest_size=8).hexdigest() + "}"


def redacted(url: str) -> str:
    """The URL without its credentials, for messages (server/redaction.py)."""
    return redact_url(url)


def _signalling(base: type, signal: ErrorSignal) -> type:
    """`base` (plain, TLS or Unix socket connection), telling `signal` when it cannot connect
    or an answer does not come in time. A pooled connection that finds itself closed is not
    told: after a Redis restart that is one stale connection, retried on a new one (above);
    when Redis is down, that new connection's connect fails and tells."""

    class SignallingConnection(base):
        # What connect() runs, and what a cluster node's connection runs on first use.
        async def connect_check_health(self, *args, **kwargs):
            try:
                return await super().connect_check_health(*args, **kwargs)
            except OUTAGE_ERRORS as e:
                signal(e)
                raise

        async def send_packed_command(self, *args, **kwargs):
            try:
                return await super().send_packed_command(*args, **kwargs)
            except RedisTimeoutError as e:
                signal(e)
                raise

        async def read_response(self, *args, **kwargs):
            try:
                return await super().read_response(*args, **kwargs)
            except RedisTimeoutError as e:
                signal(e)
                raise

    return SignallingConnection
