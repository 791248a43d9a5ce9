"""Issue 14: a caller without credentials costs nothing, however large its request.

One gateway with authentication on. Measured:
- an unauthenticated 64 MB REST body (1.8 M tiny vectors): time from the first byte sent to
  the 401 arriving, against the same request with an empty body (target: p50 ≤ 50 ms);
- an unauthenticated 64 MB gRPC UpsertVectors message: time to UNAUTHENTICATED, against an
  empty message (target: p50 ≤ 50 ms);
- /healthz while 4 such requests run in parallel, back to back (2 REST, 2 gRPC), against
  /healthz idle (target: p99 ≤ 50 ms);
- the gateway's RSS before and after.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc

from bench.context import BenchContext
from bench.harness import Stats, row
from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.security.conftest import rss_bytes
from tests.support.auth_config import write_config

SECTION = "Security (requests without credentials, auth on)"
UPSERT_PATH = "/v1/collections/films/vectors:upsert"
UPSERT_RPC = "/citadel.vector.v1.VectorService/UpsertVectors"
BODY_BYTES = 64 * 1024 * 1024 - 1024  # just under the default limits (64 MiB)
TARGET_REFUSAL_MS = 50.0
TARGET_HEALTH_P99_MS = 50.0
PARALLEL = 4


def rest_body(size: int) -> bytes:
    item = b'{"id":"v","embedding":[0.5]},'
    count = (size - 64) // len(item)
    return b'{"vectors":[' + item * count + b'{"id":"v","embedding":[0.5]}]}'


def grpc_message(size: int) -> bytes:
    one = pb.UpsertVectorsRequest(vectors=[resources_pb2.Vector(id="v", embedding=[0.5])]).SerializeToString()
    head = pb.UpsertVectorsRequest(collection="films").SerializeToString()
    return head + one * ((size - len(head)) // len(one))


def rest_refusal(port: int, body: bytes) -> tuple[float, int]:
    """Seconds from the first byte sent to the response's status line, and the status. The
    body is sent from a thread, as a client would, while this one waits for the answer; the
    connection is dropped once the answer is in (the rest of the body is not wanted)."""
    sock = socket.create_connection(("127.0.0.1", port))
    head = (
        f"POST {UPSERT_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()

    def send() -> None:
        with contextlib.suppress(OSError):  # the connection is closed under it once answered
            sock.sendall(head)
            sock.sendall(body)

    started = time.perf_counter()
    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    reply = sock.makefile("rb")
    status_line = reply.readline()
    elapsed = time.perf_counter() - started
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    reply.close()
    sock.close()
    sender.join()
    return elapsed, int(status_line.split()[1])


def grpc_refusal(call, message: bytes) -> tuple[float, grpc.StatusCode]:
    started = time.perf_counter()
    try:
        call(message, timeout=60)
        code = grpc.StatusCode.OK
    except grpc.RpcError as e:
        code = e.code()
    return time.perf_counter() - started, code


HEALTH_POLLER = """
import http.client, json, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
samples, deadline = [], time.perf_counter() + seconds
while time.perf_counter() < deadline:
    started = time.perf_counter()
    conn.request("GET", "/healthz")
    response = conn.getresponse()
    response.read()
    assert response.status == 200, response.status
    samples.append((time.perf_counter() - started) * 1000)
    time.sleep(0.005)
print(json.dumps(samples))
"""


def health_latencies(port: int, seconds: float) -> list[float]:
    """/healthz latencies in ms, polled from a process of its own: in this one, the hostile
    clients' threads would share its GIL and the figures would be this process's waits."""
    done = subprocess.run(
        [sys.executable, "-c", HEALTH_POLLER, str(port), str(seconds)],
        capture_output=True,
        check=True,
        text=True,
    )
    return json.loads(done.stdout)


def rest_whole(port: int, body: bytes) -> int:
    """A client that sends its whole body before reading the answer, as most do."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", UPSERT_PATH, body=body, headers={"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status


def copy_time(data: bytes) -> float:
    started = time.perf_counter()
    bytearray(data)
    return time.perf_counter() - started


def stats(samples_s: list[float]) -> Stats:
    return Stats([s * 1000 for s in samples_s], sum(samples_s))


def run(ctx: BenchContext) -> list[dict]:
    rounds = ctx.samples(30)
    health_seconds = 4.0 if ctx.quick else 12.0
    config = write_config(Path(ctx.scratch("security")) / "citadel.toml")
    body, message = rest_body(BODY_BYTES), grpc_message(BODY_BYTES)
    with ctx.gateway(
        "security", env={"CITADEL_ACCESS_LOG": "false"}, args=["--config", str(config.config_path)]
    ) as gw:
        call = gw.channel().unary_unary(UPSERT_RPC, request_serializer=None, response_deserializer=None)
        rss_before = rss_bytes(gw.proc.pid)
        samples: dict[str, list[float]] = {
            "rest_small": [],
            "rest_big": [],
            "grpc_small": [],
            "grpc_big": [],
            "copy": [],
        }
        for _ in range(rounds):  # interleaved: drift hits both sides alike
            for name, fn, expected in (
                ("rest_small", lambda: rest_refusal(gw.http_port, b"{}"), 401),
                ("rest_big", lambda: rest_refusal(gw.http_port, body), 401),
                ("grpc_small", lambda: grpc_refusal(call, b""), grpc.StatusCode.UNAUTHENTICATED),
                ("grpc_big", lambda: grpc_refusal(call, message), grpc.StatusCode.UNAUTHENTICATED),
            ):
                elapsed, outcome = fn()
                if outcome != expected:
                    raise RuntimeError(f"{name}: expected {expected}, got {outcome}")
                samples[name].append(elapsed)
            samples["copy"].append(copy_time(message))

        idle = health_latencies(gw.http_port, health_seconds / 2)
        stop = threading.Event()
        hostile_sent = [0]

        def hostile(kind: str) -> None:
            while not stop.is_set():
                if kind == "rest":
                    rest_whole(gw.http_port, body)
                else:
                    grpc_refusal(call, message)
                hostile_sent[0] += 1

        workers = [threading.Thread(target=hostile, args=(k,)) for k in ("rest", "grpc") * (PARALLEL // 2)]
        for w in workers:
            w.start()
        time.sleep(0.5)  # all four under way
        loaded = health_latencies(gw.http_port, health_seconds)
        stop.set()
        for w in workers:
            w.join()
        time.sleep(1.0)
        rss_after = rss_bytes(gw.proc.pid)

    rest_small, rest_big = stats(samples["rest_small"]), stats(samples["rest_big"])
    grpc_small, grpc_big = stats(samples["grpc_small"]), stats(samples["grpc_big"])
    copy = stats(samples["copy"])
    health_idle, health_loaded = Stats(idle, sum(idle) / 1000), Stats(loaded, sum(loaded) / 1000)
    mb = f"{len(body) / 1e6:.0f} MB"

    def verdict(value: float, target: float) -> str:
        return f"target ≤ {target:.0f} ms: {'met' if value <= target else 'MISSED'}"

    return [
        row(SECTION, "REST upsert, empty body, no credentials → 401", rest_small, baseline="-"),
        row(
            SECTION,
            f"REST upsert, {mb} body, no credentials → 401 (first byte sent to answer)",
            rest_big,
            baseline="empty body",
            ratio=rest_big.p50 / rest_small.p50,
            note=verdict(rest_big.p50, TARGET_REFUSAL_MS),
        ),
        row(SECTION, "gRPC UpsertVectors, empty message, no credentials", grpc_small, baseline="-"),
        row(
            SECTION,
            f"gRPC UpsertVectors, {len(message) / 1e6:.0f} MB message, no credentials",
            grpc_big,
            baseline="empty message",
            ratio=grpc_big.p50 / grpc_small.p50,
            note=verdict(grpc_big.p50, TARGET_REFUSAL_MS),
        ),
        row(
            SECTION,
            f"  the client's floor: one copy of the {len(message) / 1e6:.0f} MB message in memory",
            copy,
            baseline="-",
            note="grpc's client copies the message into its buffers before sending",
        ),
        row(SECTION, "/healthz, idle (polled from another process)", health_idle, baseline="-"),
        row(
            SECTION,
            f"/healthz while {PARALLEL} such requests run back to back (2 REST sending all, 2 gRPC)",
            health_loaded,
            baseline="idle",
            ratio=health_loaded.p99 / health_idle.p99,
            hostile_requests=hostile_sent[0],
            note=f"p99 {verdict(health_loaded.p99, TARGET_HEALTH_P99_MS)}",
        ),
        row(
            SECTION,
            "gateway RSS before → after all of it",
            rss_mb=f"{rss_before / 2**20:.0f} → {rss_after / 2**20:.0f}",
        ),
    ]
