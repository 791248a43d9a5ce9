"""Issue 16: server CPU per call of the same SearchVectors over gRPC, REST, gRPC-Web and Connect.

10,000 × 384 vectors loaded once (as the protocols section does, cache off). The gateway's CPU
time (user + system, from /proc, its children included) is read before and after each block of
calls, so the figure is the server's alone, whatever the client costs. Blocks take turns
between the protocols over several rounds so drift hits all equally. gRPC-Web and Connect send
the binary protobuf message over one keep-alive HTTP/1.1 connection, as browsers' clients do;
Connect with JSON is shown too. Target: gRPC-Web and Connect (proto) ≤ 1.15 × gRPC.
"""

from __future__ import annotations

import http.client
import struct

import orjson

from bench.context import BenchContext
from bench.core import COLLECTION, DIM, N_VECTORS, load_gateway
from bench.gateway_cpu import cpu_per_call, wait_until_idle
from bench.harness import row
from citadel.vector.v1 import vector_service_pb2 as pb

SECTION = "gRPC-Web and Connect (server CPU per SearchVectors, 10k × 384, limit 10)"
TARGET_RATIO = 1.15
RPC_PATH = "/citadel.vector.v1.VectorService/SearchVectors"


class HttpClient:
    """POSTs bodies over one keep-alive connection; checks the status and reads the answer."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path: str, body: bytes, content_type: str) -> tuple[http.client.HTTPResponse, bytes]:
        self.conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = self.conn.getresponse()
        payload = response.read()
        if response.status != 200 or response.getheader("grpc-status") not in (None, "0"):
            raise RuntimeError(f"{path}: HTTP {response.status} {response.getheaders()}: {payload[:200]!r}")
        return response, payload

    def close(self) -> None:
        self.conn.close()


def grpc_web_reply(payload: bytes) -> pb.SearchVectorsResponse:
    flags, length = struct.unpack_from(">BI", payload)
    trailer = payload[5 + length :]
    if flags != 0 or b"grpc-status: 0" not in trailer:
        raise RuntimeError(f"gRPC-Web reply without a message and status 0: {payload[:200]!r}")
    return pb.SearchVectorsResponse.FromString(payload[5 : 5 + length])


def run(ctx: BenchContext) -> list[dict]:
    vectors = ctx.vectors(N_VECTORS if not ctx.quick else 2_000, DIM)
    queries = ctx.vectors(64, DIM, seed=11)
    with ctx.gateway("rpc_web", env={"CITADEL_CACHE_ENABLED": "false"}) as gw:
        stub = gw.stub()
        load_gateway(stub, vectors)
        wait_until_idle([gw])
        requests = [
            pb.SearchVectorsRequest(collection=COLLECTION, query_vector=q.tolist(), limit=10) for q in queries
        ]
        protos = [r.SerializeToString() for r in requests]
        framed = [struct.pack(">BI", 0, len(p)) + p for p in protos]
        rest_path = f"/v1/collections/{COLLECTION}/vectors:search"
        rest_bodies = [orjson.dumps({"queryVector": q.tolist(), "limit": 10}) for q in queries]
        json_bodies = [
            orjson.dumps({"collection": COLLECTION, "queryVector": q.tolist(), "limit": 10}) for q in queries
        ]
        http = HttpClient(gw.http_port)

        calls = {
            "grpc": lambda i: stub.SearchVectors(requests[i]),
            "rest": lambda i: orjson.loads(http.post(rest_path, rest_bodies[i], "application/json")[1]),
            "grpc_web": lambda i: grpc_web_reply(
                http.post(RPC_PATH, framed[i], "application/grpc-web+proto")[1]
            ),
            "connect": lambda i: pb.SearchVectorsResponse.FromString(
                http.post(RPC_PATH, protos[i], "application/proto")[1]
            ),
            "connect_json": lambda i: orjson.loads(
                http.post(RPC_PATH, json_bodies[i], "application/json")[1]
            ),
        }
        # Same answers first: a protocol that got it wrong would be fast for nothing.
        expected = [r.id for r in calls["grpc"](0).results]
        assert [r["id"] for r in calls["rest"](0)["results"]] == expected
        assert [r.id for r in calls["grpc_web"](0).results] == expected
        assert [r.id for r in calls["connect"](0).results] == expected
        assert [r["id"] for r in calls["connect_json"](0)["results"]] == expected

        per_block = ctx.samples(300)
        rounds = 3 if ctx.quick else 6
        per_round = cpu_per_call(gw, calls, len(queries), per_block, rounds)
        http.close()
    micros = {name: sum(values) / len(values) for name, values in per_round.items()}
    base = micros["grpc"]

    def line(name: str, label: str, target: bool = False) -> dict:
        ratio = micros[name] / base
        note = f"target ≤ {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'MISSED'}" if target else ""
        return row(
            SECTION,
            label,
            server_cpu_us_per_call=round(micros[name], 1),
            baseline="grpc",
            ratio=ratio,
            note=note,
        )

    return [
        row(SECTION, "gRPC SearchVectors", server_cpu_us_per_call=round(base, 1), baseline="-", ratio=1.0),
        line("rest", "REST POST …/vectors:search (JSON)"),
        line("grpc_web", "gRPC-Web (application/grpc-web+proto)", target=True),
        line("connect", "Connect unary (application/proto)", target=True),
        line("connect_json", "Connect unary (application/json)"),
    ]
