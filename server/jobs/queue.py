"""The durable job queue interface: SQLite in the data dir, or Redis Streams shared by replicas.

Chunks are acknowledged only together with the progress they made (one transaction or one
script), after their vectors are durably upserted. A chunk whose worker died is leased again
once its lease expires; one that fails too often is dead-lettered into the job's errors.
"""

from __future__ import annotations

from typing import Protocol

from citadel.batch.v1 import batch_service_pb2 as pb
from citadel.server.jobs.changes import Progress
from citadel.server.jobs.record import Chunk, ChunkResult, Job


class JobQueue(Protocol):
    async def submit(self, job: Job, chunks: list[pb.BatchItemList]) -> tuple[Job, bool]:
        """Stores the job and its chunks atomically. With an idempotency key already used by
        the tenant, stores nothing and returns (existing job, True)."""

    async def get(self, job_id: str) -> Job | None: ...

    async def next_change(self, job_id: str, seen: Progress) -> Job | None:
        """The job once its progress (changes.progress) differs from `seen`: woken by the write
        that changed it, not by polling. After the queue's fallback interval it answers the job
        as it is, changed or not. None when the job is gone. An async method (not a context
        manager) so that it also works through the --workers host."""

    async def list(self, tenant: str, state: str, limit: int, before: float) -> list[Job]:
        """The tenant's jobs created before `before`, newest first, optionally in one state."""

    async def claim(self, worker: str) -> Chunk | None:
        """The next chunk to work on (a pending one, or one whose lease expired), or None."""

    async def complete(self, chunk: Chunk, result: ChunkResult) -> None:
        """Acknowledges the chunk and adds its progress, once; ends the job after its last chunk."""

    async def retry_or_dead_letter(self, chunk: Chunk, error: str) -> None:
        """Gives the chunk back for another attempt, or dead-letters it when out of attempts."""

    async def release(self, chunk: Chunk) -> None:
        """Hands an unfinished chunk back to the queue without counting an attempt (shutdown)."""

    async def skip(self, chunk: Chunk) -> None:
        """Acknowledges a chunk of a cancelled job without work."""

    async def mark_running(self, job_id: str) -> None: ...

    async def cancel(self, job_id: str) -> Job | None: ...

    async def depth(self) -> int:
        """Chunks waiting or in progress."""

    async def close(self) -> None: ...
