"""Issue 4: what the interceptor chain and the response cache cost and save.

- cached SearchVectors (a hit, through auth, rate limit and cache) against Health/Check on the
  same server: target QPS ratio ≥ 0.7;
- a cache lookup against a real redis-server on loopback: p50/p99 (seed: < 1 ms);
- hit rate of a repeated-query workload (Zipf-like over 200 distinct queries; seed: > 70 %).
"""

from __future__ import annotations

import asyncio
import shutil

import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.context import BenchContext
from bench.harness import Stats, interleaved, row
from citadel.admin.v1 import admin_service_pb2 as admin
from citadel.admin.v1 import admin_service_pb2_grpc
from citadel.server.cache.redis_cache import RedisCache
from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.support.redis_server import RedisServer

SECTION = "interceptors and cache"
DIM = 384


def _load(stub, ctx: BenchContext, n: int) -> None:
    stub.CreateCollection(
        pb.CreateCollectionRequest(
            collection=resources_pb2.Collection(name="cached", dimension=DIM, distance=1)
        )
    )
    vectors = ctx.vectors(n, DIM, seed=3)
    for start in range(0, n, 1000):
        stub.UpsertVectors(
            pb.UpsertVectorsRequest(
                collection="cached",
                vectors=[
                    resources_pb2.Vector(id=f"v{start + i}", embedding=v.tolist())
                    for i, v in enumerate(vectors[start : start + 1000])
                ],
            ),
            timeout=300,
        )


def run(ctx: BenchContext) -> list[dict]:
    rows = []
    with ctx.gateway("interceptors") as gw:
        stub = gw.stub()
        _load(stub, ctx, 2000)
        queries = ctx.vectors(200, DIM, seed=5)
        hot = pb.SearchVectorsRequest(collection="cached", query_vector=queries[0].tolist(), limit=10)
        stub.SearchVectors(hot)  # now cached
        health = health_pb2_grpc.HealthStub(gw.channel())
        check = health_pb2.HealthCheckRequest()
        stats = interleaved(
            {"cached": lambda: stub.SearchVectors(hot), "health": lambda: health.Check(check)},
            n=ctx.samples(2000),
        )
        c, h = stats["cached"], stats["health"]
        rows.append(row(SECTION, "grpc.health.v1 Health/Check", h, baseline="-"))
        rows.append(
            row(
                SECTION,
                "SearchVectors, cache hit (full chain)",
                c,
                baseline="health",
                ratio=c.qps / h.qps,
                note=f"QPS ratio target ≥ 0.7: {'met' if c.qps / h.qps >= 0.7 else 'MISSED'}",
            )
        )

        # Repeated-query workload: Zipf-like popularity over 200 distinct queries.
        rng = np.random.default_rng(1)
        weights = 1 / np.arange(1, 201) ** 1.1
        picks = rng.choice(200, size=ctx.samples(2000), p=weights / weights.sum())
        admin_stub = admin_service_pb2_grpc.AdminServiceStub(gw.channel())
        admin_stub.FlushCache(admin.FlushCacheRequest())
        before = {m.method: m for m in admin_stub.GetCacheStats(admin.GetCacheStatsRequest()).methods}
        for i in picks:
            stub.SearchVectors(
                pb.SearchVectorsRequest(collection="cached", query_vector=queries[i].tolist(), limit=10)
            )
        after = {m.method: m for m in admin_stub.GetCacheStats(admin.GetCacheStatsRequest()).methods}
        key = "citadel.vector.v1.VectorService/SearchVectors"
        hits = after[key].hits - before[key].hits
        misses = after[key].misses - before[key].misses
        rate = hits / (hits + misses)
        rows.append(
            row(
                SECTION,
                f"hit rate, {len(picks)} Zipf-like searches over 200 queries",
                hit_rate=f"{rate:.1%}",
                note=f"target > 70 %: {'met' if rate > 0.7 else 'MISSED'}",
            )
        )
    rows += _redis_lookup(ctx)
    return rows


def _redis_lookup(ctx: BenchContext) -> list[dict]:
    binary = shutil.which("redis-server")
    if binary is None:
        return [row(SECTION, "Redis cache lookup", note="skipped: redis-server not installed")]
    server = RedisServer(binary, ctx.scratch("redis")).start()
    try:
        samples = asyncio.run(_time_lookups(server.url, ctx.samples(2000)))
    finally:
        server.kill()
    stats = Stats(samples, sum(samples) / 1000)
    return [
        row(
            SECTION,
            "cache lookup (one Lua round trip, Redis on loopback)",
            stats,
            baseline="-",
            note=f"target p50 < 1 ms: {'met' if stats.p50 < 1 else 'MISSED'}",
        )
    ]


async def _time_lookups(url: str, n: int) -> list[float]:
    import time

    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    cache = RedisCache(client)
    hit = await cache.lookup("bench", ["k"])
    await cache.store([(hit[0].key, b"x" * 2000)], 60)
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await cache.lookup("bench", ["k"])
        samples.append((time.perf_counter() - started) * 1000)
    await client.aclose()
    return samples
