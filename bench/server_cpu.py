"""Issue 20: the gateway's own CPU per call, per protocol, in µs, with the Health/Check floor.

The same SearchVectors (10,000 × 384 vectors, limit 10, a rotating query vector, response
cache off, access log off) over gRPC, REST/JSON, GraphQL (the vector as a `[Float!]`
variable, the document the same each time, as clients send it), gRPC-Web and Connect, and
grpc.health.v1 Health/Check as the floor: what the transport alone costs the server. The
gateway's CPU time (user + system, from /proc, its children included) is read before and
after each block of calls, so the figure is the server's alone, whatever the client costs.
Blocks take turns between the protocols over several rounds, so drift hits all alike, and
each protocol's figure is the median of its rounds. Every protocol's answer is checked
against gRPC's first: a protocol that got it wrong would be fast for nothing.

Target: GraphQL ≤ 1.3 × gRPC.
"""

from __future__ import annotations

import statistics

import orjson
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.context import BenchContext
from bench.core import COLLECTION, DIM, N_VECTORS, load_gateway
from bench.gateway_cpu import cpu_per_call, wait_until_idle
from bench.harness import row
from bench.protocols import GRAPHQL_QUERY
from bench.rpc_web import RPC_PATH, HttpClient, grpc_web_reply
from citadel.vector.v1 import vector_service_pb2 as pb

SECTION = "server CPU per call, per protocol (SearchVectors, 10k × 384, limit 10)"
TARGET_GRAPHQL_RATIO = 1.3


def run(ctx: BenchContext) -> list[dict]:
    vectors = ctx.vectors(N_VECTORS if not ctx.quick else 2_000, DIM)
    queries = ctx.vectors(64, DIM, seed=11)
    env = {"CITADEL_CACHE_ENABLED": "false", "CITADEL_ACCESS_LOG": "false"}
    with ctx.gateway("server_cpu", env=env) as gw:
        stub = gw.stub()
        health = health_pb2_grpc.HealthStub(gw.channel())
        load_gateway(stub, vectors)
        wait_until_idle([gw])  # the HNSW build after the load would otherwise count
        requests = [
            pb.SearchVectorsRequest(collection=COLLECTION, query_vector=q.tolist(), limit=10) for q in queries
        ]
        protos = [r.SerializeToString() for r in requests]
        framed = [b"\0" + len(p).to_bytes(4, "big") + p for p in protos]
        rest_path = f"/v1/collections/{COLLECTION}/vectors:search"
        rest_bodies = [orjson.dumps({"queryVector": q.tolist(), "limit": 10}) for q in queries]
        graphql_bodies = [
            orjson.dumps(
                {
                    "query": GRAPHQL_QUERY,
                    "variables": {"collection": COLLECTION, "queryVector": q.tolist(), "limit": 10},
                }
            )
            for q in queries
        ]
        http = HttpClient(gw.http_port)

        def graphql(i: int) -> list[dict]:
            reply = orjson.loads(http.post("/graphql", graphql_bodies[i], "application/json")[1])
            if reply.get("errors"):
                raise RuntimeError(f"GraphQL errors: {reply['errors']}")
            return reply["data"]["searchVectors"]["results"]

        calls = {
            "health": lambda i: health.Check(health_pb2.HealthCheckRequest()),
            "grpc": lambda i: stub.SearchVectors(requests[i]),
            "rest": lambda i: orjson.loads(http.post(rest_path, rest_bodies[i], "application/json")[1]),
            "graphql": graphql,
            "grpc_web": lambda i: grpc_web_reply(
                http.post(RPC_PATH, framed[i], "application/grpc-web+proto")[1]
            ),
            "connect": lambda i: pb.SearchVectorsResponse.FromString(
                http.post(RPC_PATH, protos[i], "application/proto")[1]
            ),
        }
        for i in (0, 1):
            expected = [r.id for r in calls["grpc"](i).results]
            assert [r["id"] for r in calls["rest"](i)["results"]] == expected
            assert [r["id"] for r in calls["graphql"](i)] == expected
            assert [r.id for r in calls["grpc_web"](i).results] == expected
            assert [r.id for r in calls["connect"](i).results] == expected

        per_block = ctx.samples(300)
        rounds = 3 if ctx.quick else 7
        micros = cpu_per_call(gw, calls, len(queries), per_block, rounds)
        http.close()
    us = {name: statistics.median(values) for name, values in micros.items()}
    base, floor = us["grpc"], us["health"]
    labels = {
        "grpc": "gRPC SearchVectors",
        "rest": "REST POST …/vectors:search (JSON)",
        "graphql": "GraphQL searchVectors ($queryVector: [Float!])",
        "grpc_web": "gRPC-Web (application/grpc-web+proto)",
        "connect": "Connect unary (application/proto)",
    }
    out = [
        row(
            SECTION,
            "grpc.health.v1 Health/Check (floor)",
            server_cpu_us_per_call=round(floor, 1),
            baseline="-",
            note=f"median of {rounds} rounds × {per_block} calls per protocol",
        )
    ]
    for name, label in labels.items():
        ratio = us[name] / base
        extra = {}
        if name == "graphql":
            met = "met" if ratio <= TARGET_GRAPHQL_RATIO else "MISSED"
            extra["note"] = f"target ≤ {TARGET_GRAPHQL_RATIO}: {met}"
        out.append(
            row(
                SECTION,
                label,
                server_cpu_us_per_call=round(us[name], 1),
                over_floor_us=round(us[name] - floor, 1),
                baseline="grpc",
                ratio=ratio,
                **extra,
            )
        )
    return out
