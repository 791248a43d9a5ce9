"""redis_client on a Redis Cluster: a primary going down is told to the dependency watcher as
it happens (as on a standalone Redis), and redis.cluster against a Redis that is no cluster
stops start-up naming the setting."""

from __future__ import annotations

import pytest

from citadel.server import redis_client
from citadel.server.config import ConfigError

pytestmark = pytest.mark.asyncio


async def test_a_primary_killed_is_signalled_at_once(redis_cluster):
    heard: list[BaseException] = []
    signal = redis_client.ErrorSignal()
    signal.listener = heard.append
    client = await redis_client.connect(redis_cluster.url, signal, cluster=True)
    try:
        keys = [f"k{i}" for i in range(30)]  # enough to land on every primary
        for key in keys:
            await client.set(key, 1)
        assert not heard
        redis_cluster.procs[1].kill()
        redis_cluster.procs[1].wait(10)
        failed = None
        for key in keys:  # up to the first key the killed primary held
            try:
                await client.get(key)
            except redis_client.RedisError as e:
                failed = e
                break
        assert failed is not None, "no key was on the killed primary"
        assert heard and all(isinstance(e, redis_client.OUTAGE_ERRORS) for e in heard)
    finally:
        await client.aclose()


async def test_cluster_mode_against_a_standalone_redis_names_the_setting(redis_server):
    with pytest.raises(ConfigError) as refused:
        await redis_client.connect(redis_server.url, cluster=True)
    message = str(refused.value)
    assert message.startswith("redis.url (redis.cluster = true): cannot reach Redis at redis://127.0.0.1:"), (
        message
    )
