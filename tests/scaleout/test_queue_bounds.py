"""The job queue's state is bounded, on SQLite, a standalone Redis and a real Redis Cluster:
finished jobs (record, errors, results, idempotency key, place in the tenant's list) go after
jobs.retention_seconds while unfinished ones stay, listing pages through a tenant's jobs, and a
job larger than one submission piece is queued whole, each chunk once."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import grpc
import pytest

from citadel.batch.v1 import batch_service_pb2 as pb
from citadel.server import redis_client
from citadel.server.errors import ApiError
from citadel.server.jobs import queue_redis
from citadel.server.jobs.queue_redis import RedisQueue
from citadel.server.jobs.queue_sqlite import SqliteQueue
from citadel.server.jobs.record import ChunkResult, Job

pytestmark = pytest.mark.asyncio
RETENTION = 1.0


@pytest.fixture(params=["sqlite", "redis", "cluster"])
def open_queue(request, tmp_path):
    """`async with open_queue(retention) as queue`: a fresh queue of the parameter's kind."""
    url = ""
    if request.param == "redis":
        url = request.getfixturevalue("redis_server").url
    elif request.param == "cluster":
        url = request.getfixturevalue("redis_cluster").url

    @contextlib.asynccontextmanager
    async def opened(retention: float = RETENTION):
        if not url:
            queue = SqliteQueue(tmp_path / f"{uuid.uuid4().hex}.sqlite3", 30, 3, retention_seconds=retention)
            try:
                yield queue
            finally:
                await queue.close()
            return
        client = await redis_client.connect(url, cluster=request.param == "cluster")
        queue = RedisQueue(client, 30, 3, prefix=f"t{uuid.uuid4().hex[:6]}:", retention_seconds=retention)
        try:
            yield queue
        finally:
            await queue.close()
            await client.aclose()

    opened.kind = request.param
    return opened


def new_job(tenant: str = "acme", total: int = 2, key: str = "", operation: str = "bulk_upsert") -> Job:
    return Job(
        id=uuid.uuid4().hex,
        tenant=tenant,
        collection="" if operation == "embed" else "c",
        visible_collection="" if operation == "embed" else "c",
        model="general",
        operation=operation,
        total=total,
        idempotency_key=key,
    )


def chunks_of(n: int, per_chunk: int = 1, pad: int = 0) -> list[pb.BatchItemList]:
    return [
        pb.BatchItemList(items=[pb.BatchItem(id=f"{c}-{i}", text="x" * pad) for i in range(per_chunk)])
        for c in range(n)
    ]


async def finish_all(queue, worker: str = "w", embed: bool = False) -> list[tuple[str, int]]:
    """Claims and completes every chunk there is; the (job, index) of each, in claim order."""
    done = []
    while (chunk := await queue.claim(worker)) is not None:
        vectors = [(item.id, [1.0, 0.0]) for item in chunk.items.items] if embed else []
        await queue.complete(chunk, ChunkResult(len(chunk.items.items), [], vectors))
        done.append((chunk.job_id, chunk.index))
    return done


async def gone_within(queue, job_id: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await queue.depth()  # the SQLite queue purges from here (and claims, submissions)
        if await queue.get(job_id) is None:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_finished_job_expires_after_the_retention_and_an_unfinished_one_stays(open_queue):
    async with open_queue() as queue:
        finished, _ = await queue.submit(new_job(operation="embed"), chunks_of(2))
        await finish_all(queue, embed=True)
        ended = await queue.get(finished.id)
        assert ended.state == "succeeded" and len(ended.embeddings) == 2  # results kept until then
        waiting, _ = await queue.submit(new_job(), chunks_of(1))

        assert await gone_within(queue, finished.id, RETENTION + 10), "the finished job was kept"
        assert [j.id for j in await queue.list("acme", "", 10, float("inf"))] == [waiting.id]
        still = await queue.get(waiting.id)
        assert still is not None and still.state == "queued"
        claimed = await queue.claim("w")
        assert (claimed.job_id, claimed.index) == (waiting.id, 0)  # its work is still there


async def test_an_idempotency_key_is_kept_as_long_as_its_job(open_queue):
    async with open_queue() as queue:
        first, existed = await queue.submit(new_job(key="nightly"), chunks_of(2))
        again, existed_again = await queue.submit(new_job(key="nightly"), chunks_of(2))
        other_tenant, other_existed = await queue.submit(
            new_job(tenant="globex", key="nightly"), chunks_of(1)
        )
        assert (existed, existed_again, other_existed) == (False, True, False)
        assert again.id == first.id and other_tenant.id != first.id
        await finish_all(queue)
        assert (await queue.get(first.id)).done == 2  # the repeat added no work

        assert await gone_within(queue, first.id, RETENTION + 10)
        fresh, existed_after = await queue.submit(new_job(key="nightly"), chunks_of(1))
        assert not existed_after and (await queue.get(fresh.id)).state == "queued"


async def test_listing_pages_through_a_tenants_jobs_newest_first(open_queue):
    async with open_queue(retention=3600) as queue:
        made = []
        for i in range(120):
            job = new_job(total=1)
            job.created_at = 1_000_000 + i
            made.append((await queue.submit(job, chunks_of(1)))[0].id)
        await queue.submit(new_job(tenant="globex"), chunks_of(1))
        await queue.cancel(made[7])

        pages, before = [], float("inf")
        while page := await queue.list("acme", "", 50, before):
            pages.append([j.id for j in page])
            before = page[-1].created_at
        assert [len(p) for p in pages] == [50, 50, 20]
        assert [i for p in pages for i in p] == made[::-1]
        cancelled = await queue.list("acme", "cancelled", 50, float("inf"))
        assert [j.id for j in cancelled] == [made[7]]
        assert all(not j.errors and not j.embeddings for j in await queue.list("acme", "", 120, float("inf")))


async def test_a_job_larger_than_a_submission_piece_is_queued_whole(open_queue):
    if open_queue.kind == "sqlite":
        pytest.skip("one SQLite transaction holds the file, not a server other replicas wait on")
    n = queue_redis.PIECE_ENTRIES * 2 + 17  # more entries than two pieces
    chunks = chunks_of(n, pad=1200)  # about 1.2 KB each: several PIECE_BYTES of items
    assert sum(len(c.SerializeToString()) for c in chunks) > 2 * queue_redis.PIECE_BYTES
    async with open_queue(retention=3600) as queue:
        job, _ = await queue.submit(new_job(total=n), chunks)
        done = await finish_all(queue)
        assert sorted(i for _, i in done) == list(range(n))  # every chunk, each once
        final = await queue.get(job.id)
        assert (final.state, final.done) == ("succeeded", n)


async def test_concurrent_submissions_of_one_key_make_one_job(open_queue):
    async with open_queue(retention=3600) as queue:
        outcomes = await asyncio.gather(
            *(queue.submit(new_job(key="race"), chunks_of(3)) for _ in range(4)), return_exceptions=True
        )
        for outcome in outcomes:  # a submission still being written answers ABORTED: retry
            if isinstance(outcome, BaseException):
                assert isinstance(outcome, ApiError) and outcome.code == grpc.StatusCode.ABORTED, outcome
        made = [
            job for job, existed in (o for o in outcomes if not isinstance(o, BaseException)) if not existed
        ]
        assert len(made) == 1
        assert {job.id for job, _ in (o for o in outcomes if not isinstance(o, BaseException))} == {
            made[0].id
        }
        assert len(await finish_all(queue)) == 3
