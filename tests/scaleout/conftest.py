"""A real three-primary Redis Cluster on loopback for each test that asks for one, torn down
after it whatever happens (tests/support/redis_cluster.py)."""

from __future__ import annotations

import pytest

from tests.conftest import require_binary
from tests.support.redis_cluster import RedisCluster


@pytest.fixture
def redis_cluster(tmp_path) -> RedisCluster:
    require_binary("redis-cli", "apt-get install -y redis-tools")
    cluster = RedisCluster(
        require_binary("redis-server", "apt-get install -y redis-server"), tmp_path / "cluster"
    ).start()
    try:
        yield cluster
    finally:
        cluster.kill()


def cluster_env(cluster: RedisCluster, **extra: str) -> dict[str, str]:
    """A gateway's environment for the cluster: one node's URL and redis.cluster on."""
    return {
        "CITADEL_REDIS_URL": cluster.url,
        "CITADEL_REDIS_CLUSTER": "true",
        "CITADEL_ACCESS_LOG": "false",
        **extra,
    }
