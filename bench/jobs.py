"""Issue 6: batch throughput against the model's own.

A 10,000-item bulk_embed_upsert job through the gateway (SQLite queue, embedded store), in
items per minute, against the local model embedding the same texts directly in this process,
in the same run. Target ratio ≥ 0.9; seed floor > 1,000 items/min.
"""

from __future__ import annotations

import time

from bench.context import BenchContext
from bench.harness import row
from citadel.batch.v1 import batch_service_pb2 as batch
from citadel.batch.v1 import batch_service_pb2_grpc
from citadel.server.models.local import LocalEmbedder
from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb

SECTION = "batch jobs (bulk_embed_upsert, local model)"
TOPICS = ["rivers", "compilers", "bread", "glaciers", "chess", "violins", "tides", "moths", "bridges", "tea"]


def texts(n: int) -> list[str]:
    return [
        f"Item {i} is a short note on {TOPICS[i % 10]} written for the benchmark, number {i * 13 % 997}."
        for i in range(n)
    ]


def run(ctx: BenchContext) -> list[dict]:
    n = 1000 if ctx.quick else 10_000
    corpus = texts(n)
    embedder = LocalEmbedder()
    started = time.perf_counter()
    embedder.embed(corpus)
    raw_per_min = n / (time.perf_counter() - started) * 60

    with ctx.gateway("jobs") as gw:
        gw.stub().CreateCollection(
            pb.CreateCollectionRequest(
                collection=resources_pb2.Collection(name="bulk", dimension=384, distance=1)
            )
        )
        jobs = batch_service_pb2_grpc.BatchServiceStub(gw.channel())
        items = [batch.BatchItem(id=f"i{i}", text=t) for i, t in enumerate(corpus)]
        job = jobs.SubmitBatchJob(
            batch.SubmitBatchJobRequest(
                collection="bulk", operation=batch.OPERATION_BULK_EMBED_UPSERT, items=items
            ),
            timeout=120,
        ).job
        last = None
        for event in jobs.WatchBatchJob(batch.WatchBatchJobRequest(id=job.id), timeout=3600):
            last = event.job
        elapsed = last.finished_at.ToNanoseconds() / 1e9 - last.created_at.ToNanoseconds() / 1e9
    job_per_min = last.done / elapsed * 60
    ratio = job_per_min / raw_per_min
    return [
        row(
            SECTION,
            f"local model direct, {n} texts, 1 thread",
            items_per_min=round(raw_per_min),
            baseline="-",
        ),
        row(
            SECTION,
            f"{n}-item job, submit to finish",
            items_per_min=round(job_per_min),
            baseline="direct",
            ratio=ratio,
            note=f"target ratio ≥ 0.9: {'met' if ratio >= 0.9 else 'MISSED'}; floor > 1,000/min: "
            f"{'met' if job_per_min > 1000 else 'MISSED'}; state {batch.JobState.Name(last.state)}",
        ),
    ]
