"""Queueing a job: its items cut into chunks, this process's workers woken.

BatchService's submissions and the embedding service's queued requests (a hybrid model's
over-budget GenerateEmbedding) both go through one JobSubmitter, straight to the queue.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from citadel.batch.v1 import batch_service_pb2 as pb
from citadel.server.jobs.queue import JobQueue
from citadel.server.jobs.record import SWITCH, Job


class JobSubmitter:
    def __init__(self, queue: JobQueue, chunk_size: int) -> None:
        self._queue = queue
        self._chunk_size = chunk_size  # jobs.chunk_size: items per chunk, one upsert each
        # Set on every submission here: this process's workers look at once rather than at
        # their next poll (workers of other replicas find the work when they poll).
        self.submitted = asyncio.Event()

    async def submit(self, job: Job, items: Sequence[pb.BatchItem]) -> tuple[Job, bool]:
        """Queues `job` with its items: (the job, False), or (the tenant's existing job with
        the same idempotency key, True)."""
        job, existing = await self._queue.submit(job, self._chunks(items))
        self.submitted.set()
        return job, existing

    async def submit_reembed(self, job: Job, ids: Sequence[str]) -> tuple[Job, bool]:
        """Queues a re-embed of the collection's `ids`, then its switch as a chunk of its own
        (jobs/reembed.py), which runs once the others are done."""
        chunks = self._chunks([pb.BatchItem(id=i) for i in ids])
        job, existing = await self._queue.submit(job, [*chunks, pb.BatchItemList(items=[SWITCH])])
        self.submitted.set()
        return job, existing

    def _chunks(self, items: Sequence[pb.BatchItem]) -> list[pb.BatchItemList]:
        size = self._chunk_size
        return [pb.BatchItemList(items=items[i : i + size]) for i in range(0, len(items), size)]

    async def submit_embed(self, tenant: str, model: str, texts: Sequence[str], normalize: bool) -> Job:
        """An `embed` job of `texts` (item ids "0".."n-1", in order): its embeddings are kept
        in the job for its owner to read."""
        job = Job(
            id=uuid.uuid4().hex,
            tenant=tenant,
            collection="",
            visible_collection="",
            model=model,
            operation="embed",
            total=len(texts),
            normalize=normalize,
        )
        items = [pb.BatchItem(id=str(i), text=t) for i, t in enumerate(texts)]
        job, _ = await self.submit(job, items)
        return job
