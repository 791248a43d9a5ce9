"""Issue 22: gateway throughput with 1 and 2 replicas on one Redis Cluster (three primaries on
loopback, made for the run by tests/support/redis_cluster.py).

Every call goes through Redis: a rate-limit take (a bucket for the caller's role, far above
the load) and a cached SearchVectors (the same query, so a cache hit after the first: the
cluster lookup script, no store work). Both replicas run for the whole section; the load
alternates in rounds between one replica alone (all connections on it) and both (the same
connections split between them), so drift on this shared machine hits both alike. h2load
(Debian's nghttp2-client) sends the gRPC frames; CPU per call is read from /proc for each
gateway process. A third gateway on a standalone redis-server, driven alone, shows what the
cluster client costs per call.

Each replica holds its own embedded copy of the collection (no Qdrant server on these
machines): the cached reads under test never reach it.
"""

from __future__ import annotations

import re
import shutil
import statistics
import struct
import subprocess
from pathlib import Path

from bench.context import BenchContext
from bench.core import COLLECTION, DIM, load_gateway
from bench.gateway_cpu import gateway_cpu_seconds, wait_until_idle
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.support.gateway_process import GatewayProcess
from tests.support.redis_cluster import RedisCluster
from tests.support.redis_server import RedisServer

SECTION = "Redis Cluster (cached SearchVectors QPS, 1 vs 2 replicas on one 3-primary cluster)"
CONNECTIONS = 8
N_VECTORS = 2_000
SEARCH_PATH = "/citadel.vector.v1.VectorService/SearchVectors"
LIMITS = '[rate_limits.buckets]\n"role:anonymous" = {rate = 1000000, burst = 1000000}\n'


def run(ctx: BenchContext) -> list[dict]:
    server, h2load = shutil.which("redis-server"), shutil.which("h2load")
    if not (server and shutil.which("redis-cli") and h2load):
        print("  (needs redis-server, redis-cli and h2load: apt-get install -y redis-server nghttp2-client)")
        return []
    seconds = 2.0 if ctx.quick else 6.0
    rounds = 2 if ctx.quick else 4
    body = ctx.root / "cached-search.bin"
    query = ctx.vectors(1, DIM, seed=5)[0]
    request = pb.SearchVectorsRequest(collection=COLLECTION, query_vector=query.tolist(), limit=10)
    serialized = request.SerializeToString()
    body.write_bytes(b"\0" + struct.pack(">I", len(serialized)) + serialized)  # one gRPC frame
    config = ctx.scratch("redis-cluster-config") / "limits.toml"
    config.write_text(LIMITS)
    args = ["--insecure-no-auth", "--config", str(config)]
    cluster = RedisCluster(server, ctx.scratch("redis-cluster")).start()
    standalone = RedisServer(server, ctx.scratch("redis-standalone")).start()
    try:
        on_cluster = {
            "CITADEL_REDIS_URL": cluster.url,
            "CITADEL_REDIS_CLUSTER": "true",
            "CITADEL_ACCESS_LOG": "false",
        }
        alone_env = {"CITADEL_REDIS_URL": standalone.url, "CITADEL_ACCESS_LOG": "false"}
        vectors = ctx.vectors(N_VECTORS, DIM)
        with (
            ctx.gateway("cluster-a", env=on_cluster, args=args) as a,
            ctx.gateway("cluster-b", env=on_cluster, args=args) as b,
            ctx.gateway("standalone", env=alone_env, args=args) as s,
        ):
            for gw in (a, b, s):
                load_gateway(gw.stub(), vectors)
            wait_until_idle([a, b, s])
            setups = {"1 replica": [a], "2 replicas": [a, b], "1 replica, standalone Redis": [s]}
            for gateways in setups.values():
                _drive(body, gateways, 1.0)  # warm-up: the first call fills the cache
            for gw in (a, b, s):  # what is measured is the cached path
                _, call = gw.stub().SearchVectors.with_call(request, timeout=10)
                said = dict(call.initial_metadata()) | dict(call.trailing_metadata())
                assert said.get("cache-status") == "citadel; hit", said
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in setups}
            for _ in range(rounds):
                for name, gateways in setups.items():
                    before = sum(gateway_cpu_seconds(g) for g in gateways)
                    done = _drive(body, gateways, seconds)
                    cpu = sum(gateway_cpu_seconds(g) for g in gateways) - before
                    results[name].append((done / seconds, cpu / done * 1000))
    finally:
        standalone.kill()
        cluster.kill()
    one = statistics.median(q for q, _ in results["1 replica"])
    out = []
    for name in setups:
        qps = statistics.median(q for q, _ in results[name])
        out.append(
            {
                "section": SECTION,
                "name": f"SearchVectors gRPC cached, {name}",
                "qps": qps,
                "cpu_ms_per_call": statistics.median(c for _, c in results[name]),
                "baseline": "-" if name == "1 replica" else "1 replica",
                "ratio": qps / one,
                "note": f"h2load, {CONNECTIONS} connections in all, a rate-limit take and a cache hit per call, "
                f"median of {rounds} × {seconds:.0f} s",
            }
        )
    return out


def _drive(body: Path, gateways: list[GatewayProcess], seconds: float) -> int:
    """Calls answered by `gateways` in `seconds`, CONNECTIONS split evenly between them, one
    call in flight on each; any failed call stops the bench."""
    runs = [
        subprocess.Popen(
            [
                "h2load",
                f"--clients={CONNECTIONS // len(gateways)}",
                "--max-concurrent-streams=1",
                f"--duration={seconds:g}",
                "--header=content-type: application/grpc",
                "--header=te: trailers",
                f"--data={body}",
                f"http://{gw.grpc_target}{SEARCH_PATH}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for gw in gateways
    ]
    total = 0
    for proc in runs:
        out, _ = proc.communicate(timeout=seconds + 60)
        done = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored", out)
        if proc.returncode != 0 or done is None or done.group(2) != "0" or done.group(3) != "0":
            raise RuntimeError(f"h2load reported failures:\n{out}")
        total += int(done.group(1))
    return total
