"""The job queue on Redis Streams with one consumer group, shared by every gateway replica.

Each chunk is a stream entry; a worker reads it with XREADGROUP and acknowledges it (in one
script, together with the job's progress) only after its vectors are upserted. An entry whose
worker died stays pending and is taken over with XAUTOCLAIM once idle longer than the lease,
which is set longer than the slowest chunk. Delivery counts give attempts; an entry delivered
too often is dead-lettered into the job's errors. Scripts build their keys from one prefix, so
this targets a standalone Redis or one primary (not Redis Cluster).

Each write to a job's record is published on one channel (the job id as message); every
replica listens with one pub/sub connection and wakes its watchers (changes.py), so progress
made by another replica reaches a watcher here. FALLBACK_SECONDS re-reads in case a message
was lost (the pub/sub connection dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from citadel.batch.v1 import batch_service_pb2 as pb
from citadel.server.degraded import Outage
from citadel.server.jobs.changes import JobChanges, Progress
from citadel.server.jobs.record import (
    JOB_FIELDS,
    MAX_REPORTED_ERRORS,
    Chunk,
    ChunkResult,
    ItemFailure,
    Job,
    job_from_fields,
)
from citadel.server.tenancy import key_parts

log = logging.getLogger("citadel.jobs")

GROUP = "workers"
FALLBACK_SECONDS = 2.0
RESUBSCRIBE_SECONDS = 1.0

# ARGV: prefix, tenant and idempotency key as key_parts ('' for none), job id, tenant, created_at,
# chunk count, field pairs..., chunks...
_SUBMIT = """
local p = ARGV[1]
local idem = ARGV[2]
local id = ARGV[3]
if idem ~= '' then
  local existing = redis.call('GET', p .. 'idem:' .. idem)
  if existing then return existing end
  redis.call('SET', p .. 'idem:' .. idem, id)
end
local n = tonumber(ARGV[6])
local first_chunk = #ARGV - n + 1
for i = 7, first_chunk - 1, 2 do redis.call('HSET', p .. 'job:' .. id, ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', p .. 'by_tenant:' .. ARGV[4], ARGV[5], id)
for i = 0, n - 1 do
  redis.call('HSET', p .. 'chunk:' .. id, i, ARGV[first_chunk + i])
  redis.call('XADD', p .. 'stream', '*', 'job', id, 'idx', i)
end
return id
"""

# ARGV: prefix, group, entry id, job id, idx, done, now, results ('' for none), failures (JSON)...
_COMPLETE = """
local p = ARGV[1]
if redis.call('XACK', p .. 'stream', ARGV[2], ARGV[3]) == 0 then return 0 end
redis.call('XDEL', p .. 'stream', ARGV[3])
local job = p .. 'job:' .. ARGV[4]
redis.call('HINCRBY', job, 'done', ARGV[6])
redis.call('HINCRBY', job, 'failed', #ARGV - 8)
for i = 9, #ARGV do redis.call('RPUSH', p .. 'errors:' .. ARGV[4], ARGV[i]) end
redis.call('LTRIM', p .. 'errors:' .. ARGV[4], 0, LAST_ERROR_INDEX)
if ARGV[8] ~= '' then redis.call('HSET', p .. 'results:' .. ARGV[4], ARGV[5], ARGV[8]) end
redis.call('HDEL', p .. 'chunk:' .. ARGV[4], ARGV[5])
local s = redis.call('HMGET', job, 'done', 'failed', 'total', 'state')
local done, failed, total = tonumber(s[1]), tonumber(s[2]), tonumber(s[3])
if done + failed >= total and (s[4] == 'queued' or s[4] == 'running') then
  local final = 'partially_failed'
  if failed == 0 then final = 'succeeded' elseif done == 0 then final = 'failed' end
  redis.call('HSET', job, 'state', final, 'finished_at', ARGV[7])
end
return 1
""".replace("LAST_ERROR_INDEX", str(MAX_REPORTED_ERRORS - 1))

# ARGV: prefix, job id, now, from states (space separated), to state, stamp field
_TRANSITION = """
local job = ARGV[1] .. 'job:' .. ARGV[2]
local state = redis.call('HGET', job, 'state')
if state and string.find(' ' .. ARGV[4] .. ' ', ' ' .. state .. ' ', 1, true) then
  redis.call('HSET', job, 'state', ARGV[5], ARGV[6], ARGV[3])
end
return 1
"""


class RedisQueue:
    def __init__(
        self, client: aioredis.Redis, lease_seconds: float, max_attempts: int, prefix: str = "citadel:jobs:"
    ):
        self._r = client
        self._p = prefix
        self._stream = prefix + "stream"
        self._lease_ms = int(lease_seconds * 1000)
        self._max_attempts = max_attempts
        self._submit = client.register_script(_SUBMIT)
        self._complete = client.register_script(_COMPLETE)
        self._transition = client.register_script(_TRANSITION)
        self._group_ready = False
        self._changed = prefix + "changed"  # pub/sub channel: the id of each job written
        self._changes = JobChanges()
        self._listener: asyncio.Task | None = None
        self._subscribed = asyncio.Event()

    async def _ensure_group(self) -> None:
        if not self._group_ready:
            try:
                await self._r.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
            except ResponseError as e:
                if "BUSYGROUP" not in str(e):
                    raise
            self._group_ready = True

    # -- jobs -----------------------------------------------------------------------------

    async def submit(self, job: Job, chunks: list[pb.BatchItemList]) -> tuple[Job, bool]:
        await self._ensure_group()
        pairs = []
        for name in JOB_FIELDS:
            pairs += [name, str(getattr(job, name))]
        # Length-prefixed, so no tenant and key pair can name another pair's idempotency entry.
        idem = key_parts(job.tenant, job.idempotency_key) if job.idempotency_key else ""
        args = [self._p, idem, job.id, job.tenant, job.created_at, len(chunks), *pairs]
        args += [c.SerializeToString() for c in chunks]
        stored_id = _text(await self._submit(keys=[], args=args))
        if stored_id != job.id:
            return await self.get(stored_id), True
        return job, False

    async def get(self, job_id: str) -> Job | None:
        raw = await self._r.hgetall(f"{self._p}job:{job_id}")
        if not raw:
            return None
        job = job_from_fields({_text(k): _text(v) for k, v in raw.items()})
        job.errors = [
            ItemFailure(**json.loads(e)) for e in await self._r.lrange(f"{self._p}errors:{job_id}", 0, -1)
        ]
        if job.operation == "embed" and job.terminal:
            stored = await self._r.hgetall(f"{self._p}results:{job_id}")
            for _, payload in sorted(stored.items(), key=lambda kv: int(kv[0])):
                job.embeddings += [
                    (e.item_id, list(e.values)) for e in pb.BatchJob.FromString(payload).embeddings
                ]
        return job

    async def next_change(self, job_id: str, seen: Progress) -> Job | None:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen())
        # Subscribed before the first read, or a change made meanwhile waits for the fallback.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), FALLBACK_SECONDS)
        return await self._changes.next_change(job_id, seen, self.get, FALLBACK_SECONDS)

    async def _listen(self) -> None:
        """Wakes this replica's watchers for every job written by any replica; resubscribes
        after Redis drops the connection."""
        outage = Outage(
            f"job progress channel (watchers re-read every {FALLBACK_SECONDS:g} s meanwhile)",
            failures="resubscriptions",
            logger=log,
        )
        while True:
            pubsub = self._r.pubsub()
            try:
                await pubsub.subscribe(self._changed)
                async for message in pubsub.listen():
                    if message["type"] == "subscribe":
                        self._subscribed.set()
                        outage.recovered()
                    elif message["type"] == "message":
                        self._changes.notify(_text(message["data"]))
            except (RedisError, OSError) as e:
                outage.failed(e)  # one line per outage, not one per resubscription
            finally:
                self._subscribed.clear()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
            await asyncio.sleep(RESUBSCRIBE_SECONDS)

    async def _written(self, job_id: str) -> None:
        """Tells every replica's watchers (this one's at once) that the job's record changed."""
        self._changes.notify(job_id)
        # The write itself succeeded: a lost message only delays other replicas' watchers
        # until their fallback re-read, so it must not fail the write.
        with contextlib.suppress(RedisError, OSError):
            await self._r.publish(self._changed, job_id)

    async def list(self, tenant: str, state: str, limit: int, before: float) -> list[Job]:
        jobs: list[Job] = []
        ids = await self._r.zrevrangebyscore(f"{self._p}by_tenant:{tenant}", f"({before}", "-inf")
        for job_id in ids:
            job = await self.get(_text(job_id))
            if job is not None and (not state or job.state == state):
                job.errors = []
                jobs.append(job)
                if len(jobs) >= limit:
                    break
        return jobs

    async def mark_running(self, job_id: str) -> None:
        await self._transition(
            keys=[], args=[self._p, job_id, time.time(), "queued", "running", "started_at"]
        )
        await self._written(job_id)

    async def cancel(self, job_id: str) -> Job | None:
        await self._transition(
            keys=[], args=[self._p, job_id, time.time(), "queued running", "cancelled", "finished_at"]
        )
        await self._written(job_id)
        return await self.get(job_id)

    # -- chunks ---------------------------------------------------------------------------

    async def claim(self, worker: str) -> Chunk | None:
        await self._ensure_group()
        while True:
            try:
                entry, attempts = await self._next_entry(worker)
            except ResponseError as e:
                if "NOGROUP" not in str(e):
                    raise
                # Redis restarted without its data (no persistence): the stream and its group
                # are gone. Make them again, or no chunk would ever be claimed.
                self._group_ready = False
                await self._ensure_group()
                continue
            if entry is None:
                return None
            entry_id, fields = entry
            job_id, idx = _text(fields[b"job"]), int(fields[b"idx"])
            items = await self._r.hget(f"{self._p}chunk:{job_id}", idx)
            if items is None:  # already completed by a worker whose lease we took over
                await self._r.xack(self._stream, GROUP, entry_id)
                continue
            chunk = Chunk(job_id, idx, pb.BatchItemList.FromString(items), attempts, token=_text(entry_id))
            if attempts > self._max_attempts:
                await self._dead_letter(chunk, "failed on every attempt")
                continue
            return chunk

    async def _next_entry(self, worker: str):
        # First take over entries idle past the lease (their worker died), then read new ones.
        _, claimed, *_ = await self._r.xautoclaim(self._stream, GROUP, worker, self._lease_ms, "0-0", count=1)
        if claimed:
            entry_id = claimed[0][0]
            pending = await self._r.xpending_range(self._stream, GROUP, entry_id, entry_id, 1)
            return claimed[0], int(pending[0]["times_delivered"]) if pending else 1
        read = await self._r.xreadgroup(GROUP, worker, {self._stream: ">"}, count=1)
        if not read or not read[0][1]:
            return None, 0
        return read[0][1][0], 1

    async def complete(self, chunk: Chunk, result: ChunkResult) -> None:
        payload = b""
        if result.embeddings:
            payload = pb.BatchJob(
                embeddings=[pb.JobEmbedding(item_id=i, values=v) for i, v in result.embeddings]
            ).SerializeToString()
        failures = [json.dumps(f.__dict__) for f in result.failures]
        await self._complete(
            keys=[],
            args=[
                self._p,
                GROUP,
                chunk.token,
                chunk.job_id,
                chunk.index,
                result.done,
                time.time(),
                payload,
                *failures,
            ],
        )
        await self._written(chunk.job_id)

    async def _dead_letter(self, chunk: Chunk, why: str) -> None:
        failures = [ItemFailure(item.id, why, chunk.attempts, True) for item in chunk.items.items]
        await self.complete(chunk, ChunkResult(0, failures))

    async def retry_or_dead_letter(self, chunk: Chunk, error: str) -> None:
        if chunk.attempts >= self._max_attempts:
            await self._dead_letter(chunk, error)
            return
        # Leave it pending, aged so that it becomes claimable again after a backoff.
        backoff_ms = int(min(30.0, 0.5 * 2**chunk.attempts) * 1000)
        await self._r.xclaim(
            self._stream,
            GROUP,
            "retry",
            0,
            [chunk.token],
            idle=max(0, self._lease_ms - backoff_ms),
            justid=True,
        )

    async def release(self, chunk: Chunk) -> None:
        # Aged past the lease: the next claim by any replica takes it at once. JUSTID keeps
        # the delivery count, so a shutdown does not count as a failed attempt.
        await self._r.xclaim(
            self._stream, GROUP, "released", 0, [chunk.token], idle=self._lease_ms + 1, justid=True
        )

    async def skip(self, chunk: Chunk) -> None:
        await self._r.xack(self._stream, GROUP, chunk.token)
        await self._r.xdel(self._stream, chunk.token)

    async def depth(self) -> int:
        return int(await self._r.xlen(self._stream))

    async def close(self) -> None:
        """Stops listening; the Redis client belongs to the gateway, which closes it."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
