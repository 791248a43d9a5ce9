"""REDIS_URL, the name Redis users already set, is honoured as QDRANT_URL is (CITADEL_REDIS_URL
wins when both are set), and start-up logs where the cache, the rate limits and the job queue
live, with the Redis URL's password left out."""

from __future__ import annotations

import json
import uuid

import redis

from citadel.server.config import Settings
from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.support.gateway_process import GatewayProcess
from tests.support.redis_server import free_port

PASSWORD = "s3cret-" + uuid.uuid4().hex[:8]


def password_url(redis_server) -> str:
    """The server's URL once it requires a password (set at run time: RedisServer takes no flags)."""
    redis.Redis.from_url(redis_server.url).config_set("requirepass", PASSWORD)
    return f"redis://:{PASSWORD}@127.0.0.1:{redis_server.port}/0"


def where_state_lives(proc: GatewayProcess) -> str:
    for line in proc.log().splitlines():
        if line.startswith("{"):
            msg = json.loads(line).get("msg", "")
            if msg.startswith("where state lives: "):
                return msg.removeprefix("where state lives: ")
    raise AssertionError(f"no 'where state lives' line in the log:\n{proc.log()}")


def test_redis_url_is_read_and_citadel_redis_url_wins():
    assert Settings.from_env({"REDIS_URL": "redis://127.0.0.1:1/0"}).redis_url == "redis://127.0.0.1:1/0"
    both = {"REDIS_URL": "redis://127.0.0.1:1/0", "CITADEL_REDIS_URL": "redis://127.0.0.1:2/0"}
    assert Settings.from_env(both).redis_url == "redis://127.0.0.1:2/0"
    assert Settings.from_env({}).redis_url == ""


def test_a_gateway_with_only_redis_url_uses_that_redis_and_logs_it_redacted(redis_server, tmp_path):
    url = password_url(redis_server)
    proc = GatewayProcess(tmp_path / "data", env={"REDIS_URL": url}).start()
    try:
        at = f"Redis at redis://***@127.0.0.1:{redis_server.port}/0"
        assert where_state_lives(proc) == f"cache: {at}; rate limits: {at}; job queue: {at} (streams)"
        assert PASSWORD not in proc.log()

        # And it is really used: a cached search lands in that Redis.
        stub = proc.stub()
        name = f"env-{uuid.uuid4().hex[:8]}"
        stub.CreateCollection(
            pb.CreateCollectionRequest(
                collection=resources_pb2.Collection(name=name, dimension=3, distance=1)
            )
        )
        stub.UpsertVectors(
            pb.UpsertVectorsRequest(
                collection=name, vectors=[resources_pb2.Vector(id="a", embedding=[1, 0, 0])]
            )
        )
        stub.SearchVectors(pb.SearchVectorsRequest(collection=name, query_vector=[1, 0, 0]))
        assert redis.Redis.from_url(url).keys("citadel:cache:*")
    finally:
        proc.kill()


def test_citadel_redis_url_wins_over_redis_url(redis_server, tmp_path):
    unreachable = f"redis://127.0.0.1:{free_port()}/0"  # start-up would fail on this one
    env = {"REDIS_URL": unreachable, "CITADEL_REDIS_URL": redis_server.url}
    proc = GatewayProcess(tmp_path / "data", env=env).start()
    try:
        assert f"cache: Redis at {redis_server.url};" in where_state_lives(proc)
    finally:
        proc.kill()


def test_without_redis_everything_is_in_process(gateway):
    assert where_state_lives(gateway) == (
        f"cache: in process; rate limits: in process; job queue: SQLite in {gateway.data_dir}"
    )
