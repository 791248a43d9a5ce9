"""Issue 8: search throughput with 1 and 2 worker processes (`citadel serve --workers N`).

Both gateways hold the same 10k × 384 collection on the embedded default, indexed, and run at
once; the load alternates between them in rounds, so drift on this shared machine hits both
alike. The load is h2load (Debian's nghttp2-client: a C HTTP/2 client, so the load itself costs
little CPU) sending gRPC SearchVectors frames over CONNECTIONS connections, one call in flight
on each, uncached. Without h2load, Python gRPC clients in subprocesses do the same, at about
0.8 ms of CPU per call of their own, which on two cores leaves the gateway less to work with.

The clients share the machine's cores with the gateway: the figures are what this machine gives
end to end. CPU per search is read from /proc for every gateway process.
"""

from __future__ import annotations

import multiprocessing
import re
import shutil
import statistics
import struct
import subprocess
import threading
import time
from pathlib import Path

import grpc

from bench.context import BenchContext
from bench.core import COLLECTION, DIM, N_VECTORS, NO_CACHE, load_gateway
from bench.gateway_cpu import gateway_cpu_seconds, wait_until_idle
from citadel.vector.v1 import vector_service_pb2 as pb
from citadel.vector.v1 import vector_service_pb2_grpc
from tests.support.gateway_process import GatewayProcess

SECTION = "workers (search QPS, 1 vs 2 worker processes, 10k × 384)"
CONNECTIONS = 8
SEARCH_PATH = "/citadel.vector.v1.VectorService/SearchVectors"


def run(ctx: BenchContext) -> list[dict]:
    vectors = ctx.vectors(N_VECTORS, DIM)
    queries = [
        pb.SearchVectorsRequest(collection=COLLECTION, query_vector=q.tolist(), limit=10).SerializeToString()
        for q in ctx.vectors(64, DIM, seed=11)
    ]
    seconds = 2.0 if ctx.quick else 6.0
    rounds = 2 if ctx.quick else 4
    drive = H2Load(ctx.root / "search.bin", queries[0]) if shutil.which("h2load") else PythonClients(queries)
    env = {"CITADEL_ACCESS_LOG": "false"}
    results: dict[int, list[tuple[float, float]]] = {1: [], 2: []}  # (QPS, gateway CPU ms per search)
    with (
        ctx.gateway("workers-1", env=env, args=["--insecure-no-auth", "--workers", "1"]) as one,
        ctx.gateway("workers-2", env=env, args=["--insecure-no-auth", "--workers", "2"]) as two,
    ):
        for gw in (one, two):
            load_gateway(gw.stub(), vectors)
        wait_until_idle([one, two])  # the HNSW graphs are built in child processes after writes
        for gw in (one, two):
            drive(gw, 1.0)  # warm-up
        for _ in range(rounds):
            for n, gw in ((1, one), (2, two)):
                before = gateway_cpu_seconds(gw)
                done = drive(gw, seconds)
                results[n].append((done / seconds, (gateway_cpu_seconds(gw) - before) / done * 1000))
    out = []
    one_qps = statistics.median(q for q, _ in results[1])
    for n in (1, 2):
        qps = statistics.median(q for q, _ in results[n])
        cpu = statistics.median(c for _, c in results[n])
        out.append(
            {
                "section": SECTION,
                "name": f"SearchVectors gRPC, --workers {n}",
                "qps": qps,
                "cpu_ms_per_search": cpu,
                "baseline": "-" if n == 1 else "1 worker",
                "ratio": qps / one_qps,
                "note": f"{drive.name}, {CONNECTIONS} connections, uncached, median of {rounds} × {seconds:.0f} s",
            }
        )
    return out


class H2Load:
    name = "h2load"

    def __init__(self, body: Path, request: bytes) -> None:
        body.write_bytes(b"\0" + struct.pack(">I", len(request)) + request)  # one gRPC frame
        self.body = body

    def __call__(self, gw: GatewayProcess, seconds: float) -> int:
        out = subprocess.run(
            [
                "h2load",
                f"--clients={CONNECTIONS}",
                "--max-concurrent-streams=1",
                f"--duration={seconds:g}",
                "--header=content-type: application/grpc",
                "--header=te: trailers",
                "--header=cache-control: no-cache",
                f"--data={self.body}",
                f"http://{gw.grpc_target}{SEARCH_PATH}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
        done = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored", out)
        if done is None or done.group(2) != "0" or done.group(3) != "0":
            raise RuntimeError(f"h2load reported failures:\n{out}")
        return int(done.group(1))


class PythonClients:
    name = "Python gRPC clients"

    def __init__(self, queries: list[bytes]) -> None:
        self.queries = queries

    def __call__(self, gw: GatewayProcess, seconds: float) -> int:
        spawn = multiprocessing.get_context("spawn")
        out = spawn.Queue()
        clients = [
            spawn.Process(target=_python_client, args=(gw.grpc_target, self.queries, seconds, out))
            for _ in range(2)
        ]
        for c in clients:
            c.start()
        done = sum(out.get(timeout=seconds + 120) for _ in clients)
        for c in clients:
            c.join(30)
        return done


def _python_client(target: str, queries: list[bytes], seconds: float, out) -> None:
    requests = [pb.SearchVectorsRequest.FromString(q) for q in queries]
    counts = []
    deadline = time.monotonic() + seconds

    def one_connection(offset: int) -> None:
        channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        stub = vector_service_pb2_grpc.VectorServiceStub(channel)
        i = offset
        while time.monotonic() < deadline:
            stub.SearchVectors(requests[i % len(requests)], metadata=NO_CACHE, timeout=30)
            i += 1
        channel.close()
        counts.append(i - offset)

    threads = [threading.Thread(target=one_connection, args=(k * 7,)) for k in range(CONNECTIONS // 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(sum(counts))
