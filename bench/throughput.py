"""Issue 20: uncached search throughput with 8 in flight, gateway against the engine alone.

The same 10,000 × 384 collection, indexed (HNSW), twice: in a gateway on the default settings
(embedded engine, one worker unless `--workers` says otherwise), and in this process, opened
by qdrant-edge directly. The engine's throughput is 8 threads calling its search at once (it
releases the GIL and spreads one search over its own pool): what the engine gives on this
machine with 8 in flight, with no gateway at all. The gateway's is h2load (a C HTTP/2 client,
so the load itself costs little CPU) keeping 8 gRPC SearchVectors in flight over 8
connections, uncached (`cache-control: no-cache`). Rounds alternate between the two so drift
hits both alike; each figure is the median of its rounds. A gateway with `--workers 2` runs
alongside, measured the same way, to choose the default by measurement.

Target: gateway ≥ 0.6 × the engine, with the default settings.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import threading
import time

import qdrant_edge as edge

from bench.context import BenchContext
from bench.core import COLLECTION, DIM, N_VECTORS, load_edge, load_gateway
from bench.gateway_cpu import gateway_cpu_seconds, wait_until_idle
from bench.harness import row
from bench.workers import H2Load, PythonClients
from citadel.server.store.edge import EdgeStore
from citadel.vector.v1 import vector_service_pb2 as pb

SECTION = "throughput (uncached SearchVectors, 8 in flight, 10k × 384, HNSW)"
IN_FLIGHT = 8
TARGET_RATIO = 0.6


def engine_throughput(shard, requests: list, seconds: float) -> float:
    """Searches per second with IN_FLIGHT threads calling the engine at once."""
    counts = [0] * IN_FLIGHT
    deadline = time.monotonic() + seconds

    def caller(k: int) -> None:
        i = k
        while time.monotonic() < deadline:
            shard.search(requests[i % len(requests)])
            i += 1
        counts[k] = i - k

    threads = [threading.Thread(target=caller, args=(k,)) for k in range(IN_FLIGHT)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started)


def run(ctx: BenchContext) -> list[dict]:
    vectors = ctx.vectors(N_VECTORS, DIM)
    queries = ctx.vectors(64, DIM, seed=11)
    seconds = 2.0 if ctx.quick else 5.0
    rounds = 2 if ctx.quick else 5
    direct = EdgeStore(ctx.scratch("throughput-direct") / "edge", settle_seconds=3600)
    asyncio.run(load_edge(direct, vectors))
    shard = direct._collections[COLLECTION].shard  # the engine itself, no gateway code around it
    engine_requests = [
        edge.SearchRequest(
            query=edge.Query.Nearest([float(x) for x in q]),
            limit=10,
            params=direct._search_params(False),  # what the gateway's searches ask of the engine
            with_payload=True,
        )
        for q in queries
    ]
    grpc_requests = [
        pb.SearchVectorsRequest(collection=COLLECTION, query_vector=q.tolist(), limit=10).SerializeToString()
        for q in queries
    ]
    drive = (
        H2Load(ctx.root / "throughput.bin", grpc_requests[0])
        if shutil.which("h2load")
        else PythonClients(grpc_requests)
    )
    env = {"CITADEL_ACCESS_LOG": "false"}
    engine: list[float] = []
    gateway: dict[int, list[tuple[float, float]]] = {1: [], 2: []}  # (QPS, gateway CPU µs per search)
    try:
        with (
            ctx.gateway("throughput-1", env=env) as one,
            ctx.gateway("throughput-2", env=env, args=["--insecure-no-auth", "--workers", "2"]) as two,
        ):
            for gw in (one, two):
                load_gateway(gw.stub(), vectors)
            wait_until_idle([one, two])  # the HNSW graphs are built in child processes after writes
            engine_throughput(shard, engine_requests, 1.0)  # warm-up
            for gw in (one, two):
                drive(gw, 1.0)
            for _ in range(rounds):
                engine.append(engine_throughput(shard, engine_requests, seconds))
                for workers, gw in ((1, one), (2, two)):
                    before = gateway_cpu_seconds(gw)
                    done = drive(gw, seconds)
                    gateway[workers].append((done / seconds, (gateway_cpu_seconds(gw) - before) / done * 1e6))
    finally:
        asyncio.run(direct.close())
    engine_qps = statistics.median(engine)
    out = [
        row(
            SECTION,
            f"engine in process, {IN_FLIGHT} threads calling search",
            qps=engine_qps,
            baseline="-",
            ratio=1.0,
            note=f"median of {rounds} × {seconds:.0f} s",
        )
    ]
    for workers in (1, 2):
        qps = statistics.median(q for q, _ in gateway[workers])
        ratio = qps / engine_qps
        note = f"{drive.name}, {IN_FLIGHT} connections × 1 stream, uncached"
        if workers == 1:
            note += f"; target ≥ {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'MISSED'}"
        out.append(
            row(
                SECTION,
                "gateway gRPC SearchVectors, default settings"
                if workers == 1
                else "gateway gRPC SearchVectors, --workers 2",
                qps=qps,
                server_cpu_us_per_search=round(statistics.median(c for _, c in gateway[workers]), 1),
                baseline="engine",
                ratio=ratio,
                note=note,
            )
        )
    return out
