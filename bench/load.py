"""Bounded loopback load: mixed search / upsert / embed over gRPC, REST and GraphQL at a fixed
concurrency for a fixed time; reports throughput, p50/p99 per operation, errors (must be 0)
and the gateway's RSS at start and end.

    make load                      # 60 s against a fresh embedded gateway
    python -m bench.load --seconds 10 --json
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import numpy as np

from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.support.gateway_process import GatewayProcess

DIM = 384
COLLECTION = "load"
MIX = (("search", 0.7), ("upsert", 0.2), ("embed", 0.1))
PROTOCOLS = ("grpc", "rest", "graphql")
SEARCH_GQL = (
    "query($c: String!, $v: [Float!]) { searchVectors(collection: $c, queryVector: $v, limit: 10) "
    "{ results { id score } } }"
)
UPSERT_GQL = "mutation($c: String!, $vs: [VectorInput!]) { upsertVectors(collection: $c, vectors: $vs) { upsertedCount } }"
EMBED_GQL = "query($t: String!) { generateEmbedding(text: $t) { dimensions } }"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, ms: float) -> None:
        with self.lock:
            self.latencies[key].append(ms)

    def fail(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)


class Client:
    """One load-generating thread's connections to the gateway, one per protocol."""

    def __init__(self, gateway: GatewayProcess, seed: int) -> None:
        self.stub = gateway.stub()
        self.http = httpx.Client(base_url=gateway.http_url, timeout=30)
        self.rng = random.Random(seed)
        self.ids = itertools.count(seed * 1_000_000)

    def vector(self) -> list[float]:
        v = np.random.default_rng(self.rng.randrange(1 << 30)).standard_normal(DIM).astype(np.float32)
        return (v / np.linalg.norm(v)).tolist()

    def run(self, op: str, protocol: str) -> None:
        if op == "search":
            v = self.vector()
            if protocol == "grpc":
                self.stub.SearchVectors(
                    pb.SearchVectorsRequest(collection=COLLECTION, query_vector=v, limit=10), timeout=30
                )
            elif protocol == "rest":
                self._rest(f"/v1/collections/{COLLECTION}/vectors:search", {"queryVector": v, "limit": 10})
            else:
                self._gql(SEARCH_GQL, {"c": COLLECTION, "v": v})
        elif op == "upsert":
            vid, v = f"w{next(self.ids)}", self.vector()
            if protocol == "grpc":
                self.stub.UpsertVectors(
                    pb.UpsertVectorsRequest(
                        collection=COLLECTION, vectors=[resources_pb2.Vector(id=vid, embedding=v)]
                    ),
                    timeout=30,
                )
            elif protocol == "rest":
                self._rest(
                    f"/v1/collections/{COLLECTION}/vectors:upsert", {"vectors": [{"id": vid, "embedding": v}]}
                )
            else:
                self._gql(UPSERT_GQL, {"c": COLLECTION, "vs": [{"id": vid, "embedding": v}]})
        else:
            text = f"load text {self.rng.randrange(5000)}"  # repeats: the embedding cache sees hits
            if protocol == "grpc":
                self.stub.GenerateEmbedding(pb.GenerateEmbeddingRequest(text=text), timeout=30)
            elif protocol == "rest":
                self._rest("/v1/embeddings", {"text": text})
            else:
                self._gql(EMBED_GQL, {"t": text})

    def _rest(self, path: str, body: dict) -> None:
        r = self.http.post(path, json=body)
        if r.status_code != 200:
            raise RuntimeError(f"REST {path}: {r.status_code} {r.text[:200]}")

    def _gql(self, query: str, variables: dict) -> None:
        r = self.http.post("/graphql", json={"query": query, "variables": variables})
        payload = r.json()
        if r.status_code != 200 or payload.get("errors"):
            raise RuntimeError(f"GraphQL: {r.status_code} {str(payload.get('errors'))[:200]}")


def prepare(gateway: GatewayProcess, n: int = 5000) -> None:
    stub = gateway.stub()
    stub.CreateCollection(
        pb.CreateCollectionRequest(
            collection=resources_pb2.Collection(name=COLLECTION, dimension=DIM, distance=1)
        )
    )
    rng = np.random.default_rng(0)
    data = rng.standard_normal((n, DIM)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    for start in range(0, n, 1000):
        stub.UpsertVectors(
            pb.UpsertVectorsRequest(
                collection=COLLECTION,
                vectors=[
                    resources_pb2.Vector(id=f"seed{start + i}", embedding=v.tolist())
                    for i, v in enumerate(data[start : start + 1000])
                ],
            ),
            timeout=120,
        )


def run_load(gateway: GatewayProcess, seconds: float, concurrency: int) -> dict:
    """Drives the gateway for `seconds` with `concurrency` threads; stops by itself."""
    tally = Tally()
    deadline = time.monotonic() + seconds
    ops, weights = zip(*MIX, strict=True)

    def worker(n: int) -> None:
        client = Client(gateway, seed=n + 1)
        protocol = PROTOCOLS[n % len(PROTOCOLS)]
        while time.monotonic() < deadline:
            op = client.rng.choices(ops, weights)[0]
            started = time.perf_counter()
            try:
                client.run(op, protocol)
            except (grpc.RpcError, httpx.HTTPError, RuntimeError) as e:
                tally.fail(f"{protocol} {op}: {e}")
                continue
            tally.add(f"{protocol} {op}", (time.perf_counter() - started) * 1000)
        client.http.close()

    # Warm up (model loaded, caches filled, allocator settled) before the RSS baseline.
    warm = Client(gateway, seed=0)
    for protocol in PROTOCOLS:
        for op, _ in MIX:
            warm.run(op, protocol)
    rss_start = rss_mb(gateway.proc.pid)
    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    elapsed = time.monotonic() - started
    rss_end = rss_mb(gateway.proc.pid)
    everything = [ms for samples in tally.latencies.values() for ms in samples]
    return {
        "seconds": round(elapsed, 1),
        "concurrency": concurrency,
        "requests": len(everything),
        "throughput_rps": round(len(everything) / elapsed, 1),
        "p50_ms": round(statistics.median(everything), 3) if everything else None,
        "p99_ms": round(sorted(everything)[int(0.99 * (len(everything) - 1))], 3) if everything else None,
        "errors": len(tally.errors),
        "first_errors": tally.errors[:5],
        "rss_start_mb": round(rss_start, 1),
        "rss_end_mb": round(rss_end, 1),
        "by_operation": {
            key: {
                "count": len(v),
                "p50_ms": round(statistics.median(v), 3),
                "p99_ms": round(sorted(v)[int(0.99 * (len(v) - 1))], 3),
            }
            for key, v in sorted(tally.latencies.items())
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="citadel-load-") as tmp:
        gateway = GatewayProcess(Path(tmp) / "data", env={"CITADEL_ACCESS_LOG": "false"}).start()
        try:
            prepare(gateway)
            report = run_load(gateway, args.seconds, args.concurrency)
        finally:
            gateway.stop()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"{report['requests']} requests in {report['seconds']} s at concurrency {report['concurrency']}: "
            f"{report['throughput_rps']} req/s, p50 {report['p50_ms']} ms, p99 {report['p99_ms']} ms, "
            f"errors {report['errors']}, RSS {report['rss_start_mb']} → {report['rss_end_mb']} MB"
        )
        for key, stats in report["by_operation"].items():
            print(
                f"  {key:16} {stats['count']:6d}  p50 {stats['p50_ms']:8.3f} ms  p99 {stats['p99_ms']:8.3f} ms"
            )
        for error in report["first_errors"]:
            print("  error:", error)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
