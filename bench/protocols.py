"""Issue 3: the same SearchVectors over gRPC, REST/JSON and GraphQL, one gateway, one run.

10,000 × 384 vectors loaded once; each sample is one search (limit 10) of a rotating query
vector, taking turns between the protocols so drift hits all equally. REST and GraphQL use
a persistent stdlib HTTP connection and parse the JSON answer, as gRPC deserialises its
reply. Target: REST p50 ≤ 1.3 × gRPC p50 (the adapters run the chain in process, no hop).
"""

from __future__ import annotations

import base64
import http.client

import orjson

from bench.context import BenchContext
from bench.core import COLLECTION, DIM, N_VECTORS, load_gateway
from bench.gateway_cpu import wait_until_idle
from bench.harness import interleaved, row
from citadel.vector.v1 import vector_service_pb2 as pb

SECTION = "protocols (SearchVectors, 10k × 384, limit 10)"
TARGET_REST_RATIO = 1.3
GRAPHQL_QUERY = (
    "query Search($collection: String, $queryVector: [Float!], $limit: UInt32) "
    "{ searchVectors(collection: $collection, queryVector: $queryVector, limit: $limit) "
    "{ results { id score } queryTimeMs } }"
)


class JsonClient:
    """POSTs JSON over one keep-alive connection and parses the answer."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path: str, body: bytes) -> object:
        self.conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = self.conn.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}: {payload[:200]!r}")
        return orjson.loads(payload)

    def close(self) -> None:
        self.conn.close()


def run(ctx: BenchContext) -> list[dict]:
    vectors = ctx.vectors(N_VECTORS if not ctx.quick else 2_000, DIM)
    queries = ctx.vectors(64, DIM, seed=11)
    # Response caching off: every sample is a real search, not a cache hit.
    with ctx.gateway("protocols", env={"CITADEL_CACHE_ENABLED": "false"}) as gw:
        stub = gw.stub()
        load_gateway(stub, vectors)
        wait_until_idle([gw])  # the HNSW build after the load would otherwise share the cores
        grpc_requests = [
            pb.SearchVectorsRequest(collection=COLLECTION, query_vector=q.tolist(), limit=10) for q in queries
        ]
        path = f"/v1/collections/{COLLECTION}/vectors:search"
        rest_bodies = [orjson.dumps({"queryVector": q.tolist(), "limit": 10}) for q in queries]
        rest_b64_bodies = [
            orjson.dumps({"queryVector": base64.b64encode(q.astype("<f4").tobytes()).decode(), "limit": 10})
            for q in queries
        ]
        graphql_bodies = [
            orjson.dumps(
                {
                    "query": GRAPHQL_QUERY,
                    "variables": {"collection": COLLECTION, "queryVector": q.tolist(), "limit": 10},
                }
            )
            for q in queries
        ]
        rest, graphql = JsonClient(gw.http_port), JsonClient(gw.http_port)
        turn = {"grpc": 0, "rest": 0, "rest_b64": 0, "graphql": 0}

        def next_index(name: str) -> int:
            turn[name] = (turn[name] + 1) % len(queries)
            return turn[name]

        def check_graphql(reply) -> None:
            if reply.get("errors"):
                raise RuntimeError(f"GraphQL errors: {reply['errors']}")

        fns = {
            "grpc": lambda: stub.SearchVectors(grpc_requests[next_index("grpc")]),
            "rest": lambda: rest.post(path, rest_bodies[next_index("rest")]),
            "rest_b64": lambda: rest.post(path, rest_b64_bodies[next_index("rest_b64")]),
            "graphql": lambda: check_graphql(graphql.post("/graphql", graphql_bodies[next_index("graphql")])),
        }
        # The three protocols must agree before their speed means anything.
        expected = [r.id for r in fns["grpc"]().results]
        assert [r["id"] for r in rest.post(path, rest_bodies[turn["grpc"]])["results"]] == expected
        stats = interleaved(fns, n=ctx.samples(400))
        rest.close()
        graphql.close()
    g, r, r64, q = stats["grpc"], stats["rest"], stats["rest_b64"], stats["graphql"]
    rest_ratio = r.p50 / g.p50
    return [
        row(SECTION, "gRPC SearchVectors", g, baseline="-", ratio=1.0),
        row(
            SECTION,
            "REST POST …/vectors:search (JSON array)",
            r,
            baseline="grpc",
            ratio=rest_ratio,
            note=f"target ≤ {TARGET_REST_RATIO}: {'met' if rest_ratio <= TARGET_REST_RATIO else 'MISSED'}",
        ),
        row(SECTION, "REST, queryVector as base64 float32", r64, baseline="grpc", ratio=r64.p50 / g.p50),
        row(SECTION, "GraphQL query searchVectors", q, baseline="grpc", ratio=q.p50 / g.p50),
    ]
