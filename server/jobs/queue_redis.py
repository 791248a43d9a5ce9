"""The job queue on Redis Streams with one consumer group, shared by every gateway replica.

Runs the same on a standalone Redis and on a Redis Cluster (redis.cluster): a job's keys (its
record, chunks, errors, results) share the job's hash tag and a tenant's list of jobs has the
tenant's, every script declares the keys it touches, and nothing else is done atomically
across tags. The stream is one key, read and written by single-key commands only.

Each chunk is a stream entry; a worker reads it with XREADGROUP and completes it (one script
on the job's keys: the chunk's items deleted, the job's progress added) only after its vectors
are upserted, then acknowledges the entry. Deleting the items is what makes a completion count
once: a second completion of the same chunk (a lease taken over, a duplicate entry) finds them
gone and adds nothing, and an entry whose chunk is gone is acknowledged unread. An entry whose
worker died stays pending and is taken over with XAUTOCLAIM once idle longer than the lease.
Delivery counts give attempts; an entry delivered too often is dead-lettered.

A job is submitted in bounded pieces, so no call holds Redis for long whatever the job's size
(at most PIECE_BYTES of items or PIECE_ENTRIES stream entries per round trip): its chunks, then
its stream entries, then its record. The record is the commit: an entry whose job has no record
yet is put back for a moment, and if the submission died its chunks expire and the entry is
dropped. With an idempotency key the job's id is derived from the tenant and the key, so the
record itself says whether the key was used, and a lock on the job's tag keeps two concurrent
submissions of it apart.

A job that ends (succeeded, failed, cancelled) expires with its keys `retention_seconds` later;
a tenant's list drops ids whose job is gone as it meets them, and expires when idle as long.

Each write to a job's record is published on one channel (the job id as message); every
replica listens with one pub/sub connection and wakes its watchers (changes.py), so progress
made by another replica reaches a watcher here. FALLBACK_SECONDS re-reads in case a message
was lost (the pub/sub connection dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
import secrets
import time

import grpc
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from citadel.batch.v1 import batch_service_pb2 as pb
from citadel.server.degraded import Outage
from citadel.server.errors import ApiError
from citadel.server.jobs.changes import JobChanges, Progress
from citadel.server.jobs.record import (
    JOB_FIELDS,
    MAX_REPORTED_ERRORS,
    TERMINAL,
    Chunk,
    ChunkResult,
    ItemFailure,
    Job,
    job_from_fields,
)
from citadel.server.redis_client import hash_tag
from citadel.server.tenancy import key_parts

log = logging.getLogger("citadel.jobs")

GROUP = "workers"
FALLBACK_SECONDS = 2.0
RESUBSCRIBE_SECONDS = 1.0
DEFAULT_RETENTION_SECONDS = 86_400.0
# One submission round trip carries at most this much: far inside the client's 0.5 s socket
# timeout (redis_client.SOCKET_TIMEOUT_SECONDS) even on a slow link, and never a long script.
PIECE_BYTES = 1 << 20
PIECE_ENTRIES = 1000
# An entry whose job's record is not written yet is looked at again this soon.
UNCOMMITTED_RETRY_MS = 200
LIST_PAGE_MIN = 50  # ids read per round trip by list(), at least
RESULTS_PAGE = 16  # chunks' results (a chunk's embeddings each) read per round trip
TRIM_PER_SUBMIT = 8  # oldest ids of a tenant's list checked for expired jobs per submission

# KEYS: job, chunks, submission lock. ARGV: field pairs. The record is the commit point: the
# chunks (written with an expiry in case the submission died) are kept from now on.
_COMMIT = """
redis.call('HSET', KEYS[1], unpack(ARGV))
redis.call('PERSIST', KEYS[2])
redis.call('DEL', KEYS[3])
return 1
"""

# KEYS: job, chunks, errors, results. ARGV: chunk index, done, now, results ('' for none),
# retention ms, failures (JSON)... Returns 0 (the chunk was completed before), 1, or 2 when
# this completion ended the job.
_COMPLETE = """
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'done', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'failed', #ARGV - 5)
for i = 6, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
redis.call('LTRIM', KEYS[3], 0, LAST_ERROR_INDEX)
if ARGV[4] ~= '' then redis.call('HSET', KEYS[4], ARGV[1], ARGV[4]) end
local s = redis.call('HMGET', KEYS[1], 'done', 'failed', 'total', 'state')
local done, failed, total = tonumber(s[1]), tonumber(s[2]), tonumber(s[3])
local ended = 1
if done + failed >= total and (s[4] == 'queued' or s[4] == 'running') then
  local final = 'partially_failed'
  if failed == 0 then final = 'succeeded' elseif done == 0 then final = 'failed' end
  redis.call('HSET', KEYS[1], 'state', final, 'finished_at', ARGV[3])
  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end
  ended = 2
else
  -- A chunk finishing after its job ended (cancelled meanwhile) must not outlive it.
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], ttl) end end
end
return ended
""".replace("LAST_ERROR_INDEX", str(MAX_REPORTED_ERRORS - 1))

# KEYS: job, chunks, errors, results. ARGV: now, from states (space separated), to state,
# stamp field, retention ms (or '' when the new state is not final). Returns 1 when it moved.
_TRANSITION = """
local state = redis.call('HGET', KEYS[1], 'state')
if not (state and string.find(' ' .. ARGV[2] .. ' ', ' ' .. state .. ' ', 1, true)) then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[3], ARGV[4], ARGV[1])
if ARGV[5] ~= '' then for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[5]) end end
return 1
"""


class RedisQueue:
    def __init__(
        self,
        client: aioredis.Redis,
        lease_seconds: float,
        max_attempts: int,
        prefix: str = "citadel:jobs:",
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
    ):
        self._r = client
        self._p = prefix
        self._stream = prefix + "stream"
        self._lease_ms = int(lease_seconds * 1000)
        self._max_attempts = max_attempts
        self._retention_ms = max(1, int(retention_seconds * 1000))
        self._commit = client.register_script(_COMMIT)
        self._complete = client.register_script(_COMPLETE)
        self._transition = client.register_script(_TRANSITION)
        self._group_ready = False
        self._id_secret: bytes | None = None
        self._changed = prefix + "changed"  # pub/sub channel: the id of each job written
        self._changes = JobChanges()
        self._listener: asyncio.Task | None = None
        self._subscribed = asyncio.Event()

    # -- keys -----------------------------------------------------------------------------

    def _job_keys(self, job_id: str) -> list[str]:
        """Record, chunks, errors, results: one hash tag, so one script may hold them all."""
        base = self._p + hash_tag("job", job_id)
        return [base + "job", base + "chunks", base + "errors", base + "results"]

    def _lock_key(self, job_id: str) -> str:
        return self._p + hash_tag("job", job_id) + "submitting"

    def _index(self, tenant: str) -> str:
        return self._p + hash_tag("tenant", tenant) + "jobs"

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
        if job.idempotency_key:
            job = dataclasses.replace(job, id=await self._idempotent_id(job.tenant, job.idempotency_key))
            existing = await self.get(job.id)
            if existing is not None:
                return existing, True
            if not await self._r.set(self._lock_key(job.id), "1", nx=True, px=self._lease_ms):
                existing = await self.get(job.id)
                if existing is not None:
                    return existing, True
                raise ApiError(
                    grpc.StatusCode.ABORTED,
                    "idempotency_key: a job with this key is being submitted right now; "
                    "retry shortly to get it",
                )
        try:
            await self._store_new(job, chunks)
        except BaseException:
            if job.idempotency_key:  # a retry with the key may start again at once
                with contextlib.suppress(RedisError, OSError):
                    await self._r.delete(self._lock_key(job.id))
            raise
        return job, False

    async def _store_new(self, job: Job, chunks: list[pb.BatchItemList]) -> None:
        record, chunk_key, *_ = self._job_keys(job.id)
        await self._write_chunks(chunk_key, chunks)
        await self._enqueue(job.id, len(chunks))
        pairs = []
        for name in JOB_FIELDS:
            pairs += [name, str(getattr(job, name))]
        await self._commit(keys=[record, chunk_key, self._lock_key(job.id)], args=pairs)
        # Listed once committed: a list that met an id without its record would drop the id.
        index = self._index(job.tenant)
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.zadd(index, {job.id: job.created_at})
            pipe.pexpire(index, self._retention_ms + self._lease_ms, gt=True)
            pipe.pexpire(index, self._retention_ms + self._lease_ms, nx=True)
            await pipe.execute()
        await self._trim_index(index)

    async def _trim_index(self, index: str) -> None:
        """Drops the oldest ids whose jobs have expired: each submission clears a few more
        than it adds, so a busy tenant's list holds its live jobs, not its history."""
        oldest = [_text(i) for i in await self._r.zrange(index, 0, TRIM_PER_SUBMIT - 1)]
        async with self._r.pipeline(transaction=False) as pipe:
            for job_id in oldest:
                pipe.exists(self._job_keys(job_id)[0])
            alive = await pipe.execute()
        gone = [job_id for job_id, exists in zip(oldest, alive, strict=True) if not exists]
        if gone:
            await self._r.zrem(index, *gone)

    async def _idempotent_id(self, tenant: str, key: str) -> str:
        """The job id for `tenant`'s idempotency `key`: keyed by a secret kept in Redis, so one
        tenant's ids cannot be computed by another from the keys it might guess."""
        if self._id_secret is None:
            secret_key = self._p + "id-secret"
            await self._r.set(secret_key, secrets.token_hex(32), nx=True)
            self._id_secret = await self._r.get(secret_key)
        digest = hmac.new(self._id_secret, key_parts(tenant, key).encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

    async def _write_chunks(self, chunk_key: str, chunks: list[pb.BatchItemList]) -> None:
        """The chunks' items in pieces of at most PIECE_BYTES (a larger chunk goes alone),
        expiring unless the record is committed: a submission that dies leaves nothing."""
        piece: dict[int, bytes] = {}
        size = 0
        for idx, chunk in enumerate(chunks):
            items = chunk.SerializeToString()
            if piece and size + len(items) > PIECE_BYTES:
                await self._write_piece(chunk_key, piece)
                piece, size = {}, 0
            piece[idx] = items
            size += len(items)
        if piece:
            await self._write_piece(chunk_key, piece)

    async def _write_piece(self, chunk_key: str, piece: dict[int, bytes]) -> None:
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.hset(chunk_key, mapping=piece)
            pipe.pexpire(chunk_key, 2 * self._lease_ms)
            await pipe.execute()

    async def _enqueue(self, job_id: str, count: int) -> None:
        for start in range(0, count, PIECE_ENTRIES):
            async with self._r.pipeline(transaction=False) as pipe:
                for idx in range(start, min(count, start + PIECE_ENTRIES)):
                    pipe.xadd(self._stream, {"job": job_id, "idx": idx})
                await pipe.execute()

    async def get(self, job_id: str) -> Job | None:
        record, _, errors, results = self._job_keys(job_id)
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.hgetall(record)
            pipe.lrange(errors, 0, -1)
            raw, failures = await pipe.execute()
        if not raw:
            return None
        job = job_from_fields({_text(k): _text(v) for k, v in raw.items()})
        job.errors = [ItemFailure(**json.loads(e)) for e in failures]
        if job.operation == "embed" and job.terminal:
            stored: dict = {}
            cursor = 0
            while True:  # in pages: a large job's results in one reply could outlast the timeout
                cursor, page = await self._r.hscan(results, cursor, count=RESULTS_PAGE)
                stored.update(page)
                if int(cursor) == 0:
                    break
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
        """Reads the tenant's ids a page at a time and only the jobs' records (no errors, no
        results); ids whose job has expired are dropped from the list as they are met."""
        index = self._index(tenant)
        page = max(LIST_PAGE_MIN, 2 * limit)
        jobs: list[Job] = []
        seen: set[str] = set()  # a job submitted meanwhile shifts the pages by one
        offset = 0
        while len(jobs) < limit:
            ids = [
                _text(i) for i in await self._r.zrevrangebyscore(index, f"({before}", "-inf", offset, page)
            ]
            if not ids:
                break
            async with self._r.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.hgetall(self._job_keys(job_id)[0])
                records = await pipe.execute()
            gone = [job_id for job_id, raw in zip(ids, records, strict=True) if not raw]
            for raw in records:
                if raw:
                    job = job_from_fields({_text(k): _text(v) for k, v in raw.items()})
                    if job.id not in seen and (not state or job.state == state):
                        seen.add(job.id)
                        jobs.append(job)
            if gone:
                await self._r.zrem(index, *gone)
            offset += len(ids) - len(gone)
            if len(ids) < page:
                break
        return jobs[:limit]

    async def mark_running(self, job_id: str) -> None:
        await self._transition(
            keys=self._job_keys(job_id), args=[time.time(), "queued", "running", "started_at", ""]
        )
        await self._written(job_id)

    async def cancel(self, job_id: str) -> Job | None:
        moved = await self._transition(
            keys=self._job_keys(job_id),
            args=[time.time(), "queued running", "cancelled", "finished_at", self._retention_ms],
        )
        if int(moved):
            await self._ended(job_id)
        await self._written(job_id)
        return await self.get(job_id)

    async def _ended(self, job_id: str) -> None:
        """A job just ended: its tenant's list keeps it (re-entered if the list expired while
        the job ran) as long as the job itself."""
        tenant, created_at, state = await self._r.hmget(
            self._job_keys(job_id)[0], "tenant", "created_at", "state"
        )
        if state is None or _text(state) not in TERMINAL:
            return
        index = self._index(_text(tenant))
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.zadd(index, {job_id: float(created_at)})
            pipe.pexpire(index, self._retention_ms, gt=True)
            pipe.pexpire(index, self._retention_ms, nx=True)
            await pipe.execute()

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
            record, chunk_key, *_ = self._job_keys(job_id)
            async with self._r.pipeline(transaction=False) as pipe:
                pipe.hget(chunk_key, idx)
                pipe.exists(record)
                items, committed = await pipe.execute()
            if items is None:  # completed already, or its job expired or was never committed
                await self._drop(entry_id)
                continue
            if not committed:
                if _age_ms(entry_id) > self._lease_ms:  # its submission died: never committed
                    await self._drop(entry_id)
                    continue
                # Its submission is still writing: look again in a moment, no attempt counted.
                await self._r.xclaim(
                    self._stream,
                    GROUP,
                    "uncommitted",
                    0,
                    [entry_id],
                    idle=max(0, self._lease_ms - UNCOMMITTED_RETRY_MS),
                    retrycount=max(0, attempts - 1),
                    justid=True,
                )
                return None
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

    async def _drop(self, entry_id) -> None:
        async with self._r.pipeline(transaction=False) as pipe:
            pipe.xack(self._stream, GROUP, entry_id)
            pipe.xdel(self._stream, entry_id)
            await pipe.execute()

    async def complete(self, chunk: Chunk, result: ChunkResult) -> None:
        payload = b""
        if result.embeddings:
            payload = pb.BatchJob(
                embeddings=[pb.JobEmbedding(item_id=i, values=v) for i, v in result.embeddings]
            ).SerializeToString()
        failures = [json.dumps(f.__dict__) for f in result.failures]
        outcome = await self._complete(
            keys=self._job_keys(chunk.job_id),
            args=[chunk.index, result.done, time.time(), payload, self._retention_ms, *failures],
        )
        # After the progress: a worker dying in between leaves the entry pending, and whoever
        # takes it over finds the chunk gone and only acknowledges it.
        await self._drop(chunk.token)
        if int(outcome) == 2:
            await self._ended(chunk.job_id)
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
        await self._drop(chunk.token)

    async def depth(self) -> int:
        return int(await self._r.xlen(self._stream))

    async def close(self) -> None:
        """Stops listening; the Redis client belongs to the gateway, which closes it."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener


def _age_ms(entry_id) -> int:
    """How long ago a stream entry was added, by the millisecond time in its id."""
    return int(time.time() * 1000) - int(_text(entry_id).split("-")[0])


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
