"""Wakes the watchers of a job when its record changes, so WatchBatchJob is pushed, not polled.

A queue calls `notify(job_id)` after each write to a job's record (progress, state) that this
process makes, or that it hears of from elsewhere (Redis pub/sub from other replicas). A
watcher calls `next_change`, which registers before it reads, so no write between its read
and its wait is missed. The timeout re-read is only a safety net for a notification that
could not arrive (see each queue's FALLBACK_SECONDS).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from citadel.server.jobs.record import Job

Progress = tuple[str, int, int]


def progress(job: Job) -> Progress:
    """What a watcher is shown a new message for: the state and the counts."""
    return (job.state, job.done, job.failed)


class JobChanges:
    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Event]] = {}

    @property
    def watched(self) -> int:
        """Jobs someone is waiting on (tests check that a gone watcher leaves nothing behind)."""
        return len(self._waiting)

    def notify(self, job_id: str) -> None:
        for event in self._waiting.get(job_id, ()):
            event.set()

    async def next_change(
        self,
        job_id: str,
        seen: Progress,
        read: Callable[[str], Awaitable[Job | None]],
        timeout: float,
    ) -> Job | None:
        """The job once its progress differs from `seen`, or as it is after `timeout`;
        None when it no longer exists."""
        event = asyncio.Event()
        self._waiting.setdefault(job_id, set()).add(event)
        try:
            job = await read(job_id)
            if job is None or progress(job) != seen:
                return job
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
            return await read(job_id)
        finally:
            waiting = self._waiting.get(job_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self._waiting[job_id]
