"""A watch is woken by the write that changes the job, not by polling: in process for the SQLite
queue, and across replicas through Redis pub/sub. Each wait below is bounded by half the
queues' fallback re-read, so only a pushed notification can answer it in time."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from citadel.batch.v1 import batch_service_pb2 as pb
from citadel.server.jobs import queue_redis, queue_sqlite
from citadel.server.jobs.changes import JobChanges, progress
from citadel.server.jobs.record import ChunkResult, Job

pytestmark = pytest.mark.asyncio


def new_job() -> tuple[Job, list[pb.BatchItemList]]:
    job = Job(
        id="job-1",
        tenant="",
        collection="",
        visible_collection="",
        model="general",
        operation="embed",
        total=1,
    )
    return job, [pb.BatchItemList(items=[pb.BatchItem(id="a", text="x")])]


async def woken_by(watcher, write, fallback: float) -> Job:
    """Starts a watch on the job as stored, lets it wait, writes, and returns what the watch saw."""
    job = await watcher.get(new_job()[0].id)
    watching = asyncio.create_task(watcher.next_change(job.id, progress(job)))
    await asyncio.sleep(0.1)  # the watcher read the job and waits
    assert not watching.done()
    await write(job.id)
    return await asyncio.wait_for(watching, fallback / 2)


async def test_sqlite_watch_is_woken_by_the_write(tmp_path):
    queue = queue_sqlite.SqliteQueue(tmp_path / "jobs.sqlite3", lease_seconds=10, max_attempts=3)
    try:
        await queue.submit(*new_job())
        job = await woken_by(queue, queue.mark_running, queue_sqlite.FALLBACK_SECONDS)
        assert job.state == "running"
        job = await woken_by(queue, queue.cancel, queue_sqlite.FALLBACK_SECONDS)
        assert job.state == "cancelled"
    finally:
        await queue.close()


async def test_redis_watch_is_woken_by_another_replicas_write(redis_server):
    here, there = aioredis.from_url(redis_server.url), aioredis.from_url(redis_server.url)
    watching_replica = queue_redis.RedisQueue(here, lease_seconds=10, max_attempts=3)
    working_replica = queue_redis.RedisQueue(there, lease_seconds=10, max_attempts=3)
    try:
        await working_replica.submit(*new_job())
        job = await woken_by(watching_replica, working_replica.mark_running, queue_redis.FALLBACK_SECONDS)
        assert job.state == "running"
        chunk = await working_replica.claim("w")
        job = await woken_by(
            watching_replica,
            lambda _: working_replica.complete(chunk, ChunkResult(done=1, failures=[])),
            queue_redis.FALLBACK_SECONDS,
        )
        assert (job.state, job.done) == ("succeeded", 1)
    finally:
        await watching_replica.close()
        await working_replica.close()
        await here.aclose()
        await there.aclose()


async def test_a_watcher_that_goes_away_leaves_nothing_registered():
    changes = JobChanges()
    job, _ = new_job()

    async def read(job_id: str) -> Job:
        return job

    waiting = asyncio.create_task(changes.next_change(job.id, progress(job), read, timeout=3600))
    await asyncio.sleep(0.05)
    assert changes.watched == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert changes.watched == 0
