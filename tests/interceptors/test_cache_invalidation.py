"""A write whose invalidation cannot reach Redis (down at that moment) is not forgotten: when
Redis is back with the entries it had (restored from its snapshot), no cached read from before
the write is served."""

from __future__ import annotations

import redis

from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.interceptors.test_cache import collection_with
from tests.support.gateway_process import GatewayProcess


def test_a_lost_invalidation_is_replayed_before_cached_reads(redis_server, tmp_path):
    proc = GatewayProcess(tmp_path / "data", env={"CITADEL_REDIS_URL": redis_server.url}).start()
    try:
        stub = proc.stub()
        name = collection_with(stub, {"a": [1, 0, 0]})
        query = pb.SearchVectorsRequest(collection=name, query_vector=[0, 0, 1], limit=1)
        assert [r.id for r in stub.SearchVectors(query, timeout=30).results] == ["a"]
        assert [r.id for r in stub.SearchVectors(query, timeout=30).results] == ["a"]  # now cached

        redis.Redis.from_url(redis_server.url).save()  # the snapshot it restarts from
        redis_server.kill()
        write = pb.UpsertVectorsRequest(
            collection=name, vectors=[resources_pb2.Vector(id="z", embedding=[0, 0, 1])]
        )
        stub.UpsertVectors(write, timeout=30)  # written to the store; its invalidation fails
        redis_server.start()  # same port, with the cached "a" and the version from before the write

        assert [r.id for r in stub.SearchVectors(query, timeout=30).results] == ["z"]
    finally:
        proc.stop()
