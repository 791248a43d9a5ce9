"""Workers that take chunks from the queue and write them: embed (when asked), then upsert.

Items that are wrong in themselves (no text, wrong dimension, too long, a metadata number
that is not finite) fail alone and are reported with their ids; the rest of the chunk is
written. Permanent errors (the collection is gone, the model refuses the job) fail the chunk's
items without another attempt; only failures that may pass (a backend down, a timeout) give
the whole chunk back for another attempt, since upserts are idempotent by vector id. On
shutdown, a chunk not finished within the grace period goes back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence

import grpc

from citadel.batch.v1 import batch_service_pb2 as pb
from citadel.server.degraded import Outage
from citadel.server.embeddings.fingerprint import Fingerprints, space_error
from citadel.server.embeddings.service import BULK, Embedded, EmbeddingService
from citadel.server.errors import ApiError
from citadel.server.jobs.queue import JobQueue
from citadel.server.jobs.record import Chunk, ChunkResult, ItemFailure, Job, is_switch
from citadel.server.jobs.reembed import Reembedder
from citadel.server.metrics import Metrics
from citadel.server.servicers import validation as check
from citadel.server.servicers.convert import struct_to_dict
from citadel.server.store.base import Point, VectorStore
from citadel.server.tenancy import in_callers_terms

log = logging.getLogger("citadel.jobs")

# Errors that say nothing about the items: the chunk is tried again later.
TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL,
}
IDLE_POLL_SECONDS = 0.25
# How often a re-embed's switch step looks whether the job's other chunks are done.
SWITCH_POLL_SECONDS = 0.2
DEPTH_SAMPLE_SECONDS = 2.0


class WorkerPool:
    def __init__(
        self,
        queue: JobQueue,
        store: VectorStore,
        embeddings: EmbeddingService,
        workers: int,
        lease_seconds: float,
        metrics: Metrics,
        submitted: asyncio.Event | None = None,
        on_write: Callable[[str], Awaitable[None]] | None = None,
        min_cosine: float = 0.98,  # models.resilience.replica_min_cosine
        reembed_settle_seconds: float = 5.0,  # jobs.reembed_settle_seconds
    ) -> None:
        self._queue = queue
        self._store = store
        self._embeddings = embeddings
        # Models' probe vectors, taken once per model for the workers and for re-embed submission.
        self.fingerprints = Fingerprints(embeddings, min_cosine)
        self._reembed = Reembedder(store, embeddings, self.fingerprints, reembed_settle_seconds)
        self._count = workers
        self._lease = lease_seconds
        self._metrics = metrics
        self._on_write = on_write  # invalidates cached reads of a collection the workers wrote to
        self._replica = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
        # Set when work was queued in this process (JobSubmitter.submitted): look now rather
        # than at the next poll.
        self._wake = submitted or asyncio.Event()
        self._stopping = False
        self._loops: list[asyncio.Task] = []
        self._working: dict[int, tuple[Chunk, asyncio.Task]] = {}
        # Every loop polls while the queue is down: one line when that starts, one when it ends.
        self._claims = Outage("job queue (claiming batch work)", "failed claims", log)

    def start(self) -> None:
        self._loops = [
            asyncio.create_task(self._loop(n), name=f"batch-worker-{n}") for n in range(self._count)
        ]

    async def stop(self, grace_seconds: float) -> None:
        self._stopping = True
        self._wake.set()
        running = [task for _, task in self._working.values()]
        if running:
            await asyncio.wait(running, timeout=grace_seconds)
        for chunk, task in list(self._working.values()):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                await self._queue.release(chunk)
                log.info("handed chunk %d of job %s back to the queue", chunk.index, chunk.job_id)
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)

    async def _loop(self, n: int) -> None:
        worker = f"{self._replica}-{n}"
        while not self._stopping:
            try:
                chunk = await self._queue.claim(worker)
            except Exception as e:  # the queue's backend is down: wait, then look again
                self._claims.failed(e)
                chunk = None
                await asyncio.sleep(1.0)
            else:
                self._claims.recovered()
            if self._stopping:
                if chunk is not None:
                    await self._queue.release(chunk)
                return
            if chunk is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), IDLE_POLL_SECONDS)
                continue
            task = asyncio.create_task(self._process(chunk))
            self._working[n] = (chunk, task)
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.done():
                    raise
            except Exception:
                log.exception("chunk %d of job %s", chunk.index, chunk.job_id)
            finally:
                self._working.pop(n, None)

    async def _process(self, chunk: Chunk) -> None:
        job = await self._queue.get(chunk.job_id)
        if job is None or job.state == "cancelled":
            if job is not None and job.operation == "reembed" and is_switch(chunk.items.items):
                await self._reembed.abandon(job)  # the collection stays as it was
            await self._queue.skip(chunk)
            return
        if job.state == "queued":
            await self._queue.mark_running(job.id)
        if job.operation == "reembed" and is_switch(chunk.items.items) and not await self._others_done(job):
            await self._queue.release(chunk)  # not an attempt: claimed again once others move
            return
        try:
            result = await self._execute(job, chunk.items.items)
        except ApiError as e:
            if e.code not in TRANSIENT:
                # The job cannot succeed as given (for example its collection was deleted). Its
                # owner reads the reason: in its own collection names, as the chain would say it.
                reason = in_callers_terms(job.tenant, e.message)
                failures = [ItemFailure(item.id, reason, chunk.attempts) for item in chunk.items.items]
                await self._finish(chunk, ChunkResult(0, failures))
                return
            log.warning("chunk %d of job %s will be retried: %s", chunk.index, job.id, e.message)
            await self._queue.retry_or_dead_letter(chunk, e.message)
            return
        except (OSError, TimeoutError) as e:
            await self._queue.retry_or_dead_letter(chunk, f"{type(e).__name__}: {e}")
            return
        except Exception as e:
            # Unforeseen: logged with its traceback, and the chunk handed back now (an attempt
            # counted, dead-lettered after jobs.max_attempts) rather than held until its lease ends.
            log.exception("chunk %d of job %s will be retried", chunk.index, job.id)
            await self._queue.retry_or_dead_letter(chunk, f"internal error ({type(e).__name__})")
            return
        await self._finish(chunk, result)

    async def _finish(self, chunk: Chunk, result: ChunkResult) -> None:
        await self._queue.complete(chunk, result)
        self._metrics.job_items.labels("done").inc(result.done)
        self._metrics.job_items.labels("failed").inc(len(result.failures))
        log.info(
            "chunk %d of job %s: %d written, %d failed",
            chunk.index,
            chunk.job_id,
            result.done,
            len(result.failures),
        )

    async def _others_done(self, job: Job) -> bool:
        """Whether every chunk of the job but this one (its last step) is done, waiting for
        that for a while."""
        until = time.monotonic() + self._lease * 0.5
        while True:
            current = await self._queue.get(job.id)
            if current is None or current.done + current.failed >= current.total - 1:
                return True
            if time.monotonic() > until or self._stopping:
                return False
            await asyncio.sleep(SWITCH_POLL_SECONDS)

    async def _execute(self, job: Job, items: Sequence[pb.BatchItem]) -> ChunkResult:
        if job.operation == "reembed":
            if is_switch(items):
                result = await self._reembed.switch(job, self._deadline())
            else:
                result = await self._reembed.copy(job, [i.id for i in items], self._deadline())
            if self._on_write is not None:
                await self._on_write(job.collection)  # a switch changes every answer
            return result
        failures: list[ItemFailure] = []
        good: list[pb.BatchItem] = []
        for item in items:
            problem = _item_problem(job.operation, item, self._embeddings.check_text)
            if problem:
                failures.append(ItemFailure(item.id, problem))
            else:
                good.append(item)
        if not good:
            return ChunkResult(0, failures)
        if job.operation == "embed":
            vectors = (await self._embed(job, [i.text for i in good], job.model)).vectors
            return ChunkResult(
                len(good), failures, [(i.id, v.tolist()) for i, v in zip(good, vectors, strict=True)]
            )
        spec = (await self._store.get_collection(job.collection)).spec
        points: list[Point] = []
        model, embedded_at = "", 0.0  # a caller's own vectors are recorded with no model
        if job.operation == "bulk_embed_upsert":
            if spec.embedding_model:  # permanent while the model answers in another space
                why = await self.fingerprints.check(
                    spec.embedding_model, spec.fingerprint, deadline=self._deadline(), tenant=job.tenant
                )
                if why:
                    raise space_error(job.visible_collection, spec.embedding_model, why)
            # A bound collection's own model: the job's, unless a re-embed moved it since.
            embedded = await self._embed(job, [i.text for i in good], spec.embedding_model or job.model)
            vectors, model, embedded_at = embedded.vectors, embedded.model, time.time()
            if vectors.shape[1] != spec.dimension:
                message = (
                    f"model {job.model or 'default'!r} makes {vectors.shape[1]}-dimensional vectors but collection "
                    f"{job.visible_collection!r} has dimension {spec.dimension}"
                )
                return ChunkResult(0, failures + [ItemFailure(i.id, message) for i in good])
            values = list(vectors)
        else:
            values = []
            for item in list(good):
                try:
                    values.append(
                        check.embedding("embedding", item.embedding, spec.dimension, job.visible_collection)
                    )
                except ApiError as e:
                    failures.append(ItemFailure(item.id, e.message))
                    good.remove(item)
        keep_text = job.store_text and spec.store_text
        for item, vector in zip(good, values, strict=True):
            points.append(
                Point(
                    id=item.id,
                    vector=vector.tolist(),
                    metadata=struct_to_dict(item.metadata),
                    text=item.text if keep_text and item.text else None,
                    embedding_model=model,
                    embedded_at=embedded_at,
                )
            )
        if points:
            if model and (await self._store.get_collection(job.collection)).spec.home != spec.home:
                # A re-embed switched the collection to another model while this chunk was
                # embedded: written again, with the new one.
                raise ApiError(
                    grpc.StatusCode.ABORTED,
                    f"collection {job.visible_collection!r} moved to new embeddings during the chunk",
                )
            await self._store.upsert(spec.home, points)
            if self._on_write is not None:
                await self._on_write(job.collection)
        return ChunkResult(len(points), failures)

    async def _embed(self, job: Job, texts: list[str], model: str) -> Embedded:
        return await self._embeddings.embed(
            model,
            texts,
            normalize=job.normalize,
            deadline=self._deadline(),
            tenant=job.tenant,
            priority=BULK,
        )

    def _deadline(self) -> float:
        return time.monotonic() + self._lease * 0.8  # finish well inside the lease


def _item_problem(operation: str, item: pb.BatchItem, check_text: Callable[[str, str], None]) -> str:
    """Why an item cannot be written, in `field: problem` form, or '' when it can. The item's
    own fields are named (`metadata.price: nan is not a finite number`); its id is beside it
    in the job's errors."""
    try:
        check.vector_id("id", item.id)
        check.metadata("metadata", struct_to_dict(item.metadata))
        if operation in ("bulk_embed_upsert", "embed"):
            if not item.text:
                return "text: is required"
            check_text("text", item.text)  # the embedding service's rules, as for every text
        else:
            if not item.embedding:
                return "embedding: is required"
            if item.text:  # kept beside the caller's vector: the same bounds as any text
                check_text("text", item.text)
    except ApiError as e:
        return e.message
    return ""
