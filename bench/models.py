"""Issue 5: what the model router costs, and what the local model delivers.

- GenerateEmbedding (one text, cache bypassed) through the gateway to a test model server
  (OpenAI API, backed by the local model) against POSTing the same request to that server
  directly: the ratio is the router's overhead (gRPC hop, chain, balancing, limits, breaker).
- The local model's throughput in texts/s: in this process on one thread, and through the
  gateway's `general` model (the in-process local provider) with 32-text requests.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.context import BenchContext
from bench.harness import interleaved, row
from bench.jobs import texts
from citadel.server.models.local import LocalEmbedder
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.models.conftest import backend, write_config
from tests.support.model_server import ModelServer

SECTION = "models (router overhead, local model throughput)"
NO_CACHE = (("cache-control", "no-cache"),)


def run(ctx: BenchContext) -> list[dict]:
    rows = []
    server = ModelServer(ctx.scratch("models-server"), "bench").start()
    try:
        config = write_config(
            ctx.scratch("models") / "citadel.toml",
            {"remote": {"backends": [backend(server)]}},
            default="remote",
        )
        with ctx.gateway("models", env={"CITADEL_CONFIG": str(config), "CITADEL_ACCESS_LOG": "false"}) as gw:
            stub = gw.stub()
            text = "How far does a glacier move in a year?"
            request = pb.GenerateEmbeddingRequest(text=text, model="remote")
            client = httpx.Client(base_url=server.url, timeout=30)
            body = {"model": "minilm", "input": [text], "encoding_format": "float"}
            stats = interleaved(
                {
                    "gateway": lambda: stub.GenerateEmbedding(request, metadata=NO_CACHE, timeout=30),
                    "direct": lambda: client.post("/v1/embeddings", json=body).raise_for_status(),
                },
                n=ctx.samples(300),
            )
            client.close()
        g, d = stats["gateway"], stats["direct"]
        rows += [
            row(SECTION, "POST /v1/embeddings to the model server directly", d, baseline="-", ratio=1.0),
            row(
                SECTION,
                "GenerateEmbedding via gateway → same server",
                g,
                baseline="direct",
                ratio=g.p50 / d.p50,
                overhead_ms=g.p50 - d.p50,
            ),
        ]
    finally:
        server.close()

    n = 500 if ctx.quick else 5000
    corpus = texts(n)
    embedder = LocalEmbedder()
    embedder.embed(corpus[:50])  # warm up
    started = time.perf_counter()
    embedder.embed(corpus)
    direct_rate = n / (time.perf_counter() - started)
    with ctx.gateway("models-local", env={"CITADEL_ACCESS_LOG": "false"}) as gw:
        stub = gw.stub()
        batches = [corpus[i : i + 32] for i in range(0, n, 32)]
        stub.GenerateEmbedding(pb.GenerateEmbeddingRequest(texts=batches[0]), metadata=NO_CACHE, timeout=60)

        def one(batch: list[str]):
            return stub.GenerateEmbedding(
                pb.GenerateEmbeddingRequest(texts=batch), metadata=NO_CACHE, timeout=120
            )

        started = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(one, batches))
        gateway_rate = n / (time.perf_counter() - started)
    rows += [
        row(
            SECTION,
            f"local model in process, {n} texts, 1 thread",
            texts_per_s=round(direct_rate),
            baseline="-",
        ),
        row(
            SECTION,
            f"local model via gateway (general), {n} texts in 32s, 2 clients",
            texts_per_s=round(gateway_rate),
            baseline="in process",
            ratio=gateway_rate / direct_rate,
        ),
    ]
    return rows
