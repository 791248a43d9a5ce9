"""Issue 8: search throughput with 1 and 2 worker processes (`citadel serve --workers N`).

Both gateways hold the same 10k × 384 collection on the embedded default and run at once; the
load alternates between them in rounds, so drift on this shared machine hits both alike. The
load is CLIENTS processes × THREADS threads, each thread on a TCP connection of its own (so the
kernel spreads them over the workers), each with one uncached SearchVectors in flight at a time.
The clients run on the same two cores as the gateway: the figures are what this machine gives
end to end, not the server alone.
"""

from __future__ import annotations

import multiprocessing
import statistics
import threading
import time

import grpc

from bench.context import BenchContext
from bench.core import COLLECTION, DIM, N_VECTORS, NO_CACHE, load_gateway
from citadel.vector.v1 import vector_service_pb2 as pb
from citadel.vector.v1 import vector_service_pb2_grpc

SECTION = "workers (search QPS, 1 vs 2 worker processes, 10k × 384)"
CLIENTS = 2
THREADS = 4


def _drive(target: str, queries: list[bytes], seconds: float, out) -> None:
    """One client process: THREADS connections searching until the time is up."""
    requests = [pb.SearchVectorsRequest.FromString(q) for q in queries]
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def one_connection(offset: int) -> None:
        channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        stub = vector_service_pb2_grpc.VectorServiceStub(channel)
        mine, i = [], offset
        while time.monotonic() < deadline:
            started = time.perf_counter()
            stub.SearchVectors(requests[i % len(requests)], metadata=NO_CACHE, timeout=30)
            mine.append((time.perf_counter() - started) * 1000)
            i += 1
        channel.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=one_connection, args=(k * 7,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(latencies)


def measure(target: str, queries: list[bytes], seconds: float) -> tuple[float, float]:
    """(QPS, p50 ms) over CLIENTS processes for `seconds`."""
    spawn = multiprocessing.get_context("spawn")
    out = spawn.Queue()
    clients = [spawn.Process(target=_drive, args=(target, queries, seconds, out)) for _ in range(CLIENTS)]
    for c in clients:
        c.start()
    # Client processes take a moment to import and connect; count from the first result back.
    latencies = [x for _ in clients for x in out.get(timeout=seconds + 120)]
    for c in clients:
        c.join(30)
    return len(latencies) / seconds, statistics.median(latencies)


def run(ctx: BenchContext) -> list[dict]:
    vectors = ctx.vectors(N_VECTORS, DIM)
    queries = [
        pb.SearchVectorsRequest(collection=COLLECTION, query_vector=q.tolist(), limit=10).SerializeToString()
        for q in ctx.vectors(64, DIM, seed=11)
    ]
    seconds = 2.0 if ctx.quick else 5.0
    rounds = 2 if ctx.quick else 4
    env = {"CITADEL_ACCESS_LOG": "false"}
    qps: dict[int, list[float]] = {1: [], 2: []}
    p50: dict[int, list[float]] = {1: [], 2: []}
    with (
        ctx.gateway("workers-1", env=env, args=["--insecure-no-auth", "--workers", "1"]) as one,
        ctx.gateway("workers-2", env=env, args=["--insecure-no-auth", "--workers", "2"]) as two,
    ):
        for gw in (one, two):
            load_gateway(gw.stub(), vectors)
        measure(one.grpc_target, queries, 1.0)  # warm both before counting
        measure(two.grpc_target, queries, 1.0)
        for _ in range(rounds):
            for n, gw in ((1, one), (2, two)):
                q, p = measure(gw.grpc_target, queries, seconds)
                qps[n].append(q)
                p50[n].append(p)
    one_qps, two_qps = statistics.median(qps[1]), statistics.median(qps[2])
    load = f"{CLIENTS}×{THREADS} connections, uncached, median of {rounds} × {seconds:.0f} s"
    return [
        row_for(1, one_qps, statistics.median(p50[1]), load, baseline="-", ratio=1.0),
        row_for(2, two_qps, statistics.median(p50[2]), load, baseline="1 worker", ratio=two_qps / one_qps),
    ]


def row_for(workers: int, qps: float, p50: float, note: str, **extra) -> dict:
    return {
        "section": SECTION,
        "name": f"SearchVectors gRPC, --workers {workers}",
        "qps": qps,
        "p50_ms": p50,
        "note": note,
        **extra,
    }
