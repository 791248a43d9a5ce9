"""The job queue in one SQLite file in the data dir: the embedded default.

WAL mode with synchronous=NORMAL survives a killed process (not a power cut) without an fsync
per chunk. Leases with an expiry stand in for a consumer group: a chunk whose worker died is
claimed again once its lease runs out. One connection, used from worker threads under a lock.

A job that ended is deleted with its chunks, errors and results `retention_seconds` after it
ended (jobs.retention_seconds, as on Redis), and its idempotency key with it; the purge runs
from submissions, claims and depth checks, at most every PURGE_EVERY_SECONDS.

Every write to a job's record wakes that job's watchers (changes.py). Each write to this file
goes through this object (under --workers the supervisor hosts it for every worker), so the
watchers hear of all of them; FALLBACK_SECONDS only re-reads in case one was missed.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from citadel.batch.v1 import batch_service_pb2 as pb
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY, tenant TEXT NOT NULL, collection TEXT NOT NULL, visible_collection TEXT NOT NULL,
  model TEXT NOT NULL, operation TEXT NOT NULL, total INTEGER NOT NULL, idempotency_key TEXT NOT NULL,
  state TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
  created_at REAL NOT NULL, started_at REAL NOT NULL DEFAULT 0, finished_at REAL NOT NULL DEFAULT 0,
  normalize INTEGER NOT NULL DEFAULT 0, store_text INTEGER NOT NULL DEFAULT 1, target TEXT NOT NULL DEFAULT '');
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON jobs(tenant, idempotency_key) WHERE idempotency_key != '';
CREATE INDEX IF NOT EXISTS jobs_by_tenant ON jobs(tenant, created_at);
CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(finished_at) WHERE finished_at > 0;
CREATE TABLE IF NOT EXISTS chunks (
  job_id TEXT NOT NULL, idx INTEGER NOT NULL, items BLOB NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
  owner TEXT NOT NULL DEFAULT '', lease_until REAL NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,
  created_at REAL NOT NULL, PRIMARY KEY (job_id, idx));
CREATE INDEX IF NOT EXISTS chunks_ready ON chunks(state, created_at);
CREATE TABLE IF NOT EXISTS item_errors (
  job_id TEXT NOT NULL, item_id TEXT NOT NULL, message TEXT NOT NULL, attempts INTEGER NOT NULL, dead INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS item_errors_by_job ON item_errors(job_id);
CREATE TABLE IF NOT EXISTS results (job_id TEXT NOT NULL, idx INTEGER NOT NULL, payload BLOB NOT NULL,
  PRIMARY KEY (job_id, idx));
"""
_JOB_COLUMNS = ", ".join(JOB_FIELDS)
FALLBACK_SECONDS = 2.0
DEFAULT_RETENTION_SECONDS = 86_400.0
PURGE_EVERY_SECONDS = 10.0
PURGE_BATCH = 500  # jobs deleted per transaction, so a purge never holds the file for long
_FINISH = """
UPDATE jobs SET state = CASE WHEN failed = 0 THEN 'succeeded' WHEN done = 0 THEN 'failed'
  ELSE 'partially_failed' END, finished_at = ?
WHERE id = ? AND done + failed >= total AND state IN ('queued', 'running')
"""


# Where a job's rows are, by the column holding its id.
_JOB_TABLES = (("chunks", "job_id"), ("item_errors", "job_id"), ("results", "job_id"), ("jobs", "id"))

# Columns added since the first release, for queue files made before them: (name, definition).
_ADDED_JOB_COLUMNS = (
    ("store_text", "INTEGER NOT NULL DEFAULT 1"),
    ("target", "TEXT NOT NULL DEFAULT ''"),
)


def _add_missing_columns(db: sqlite3.Connection) -> None:
    have = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
    for name, definition in _ADDED_JOB_COLUMNS:
        if name not in have:
            db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {definition}")


class SqliteQueue:
    def __init__(
        self,
        path: Path,
        lease_seconds: float,
        max_attempts: int,
        retention_seconds: float = DEFAULT_RETENTION_SECONDS,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        _add_missing_columns(self._db)
        self._lock = threading.Lock()
        self._lease = lease_seconds
        self._max_attempts = max_attempts
        self._retention = retention_seconds
        self._purge_every = min(PURGE_EVERY_SECONDS, retention_seconds / 2)
        self._purged_at = 0.0
        self._changes = JobChanges()

    async def _run(self, fn, *args):
        def locked():
            with self._lock:
                return fn(*args)

        return await asyncio.to_thread(locked)

    def _transaction(self):
        return _Transaction(self._db)

    # -- jobs -----------------------------------------------------------------------------

    async def submit(self, job: Job, chunks: list[pb.BatchItemList]) -> tuple[Job, bool]:
        return await self._run(self._submit, job, chunks)

    def _submit(self, job: Job, chunks: list[pb.BatchItemList]) -> tuple[Job, bool]:
        self._purge_due()  # first: an expired job's idempotency key is free again
        with self._transaction():
            if job.idempotency_key:
                row = self._db.execute(
                    "SELECT id FROM jobs WHERE tenant = ? AND idempotency_key = ?",
                    (job.tenant, job.idempotency_key),
                ).fetchone()
                if row:
                    return self._get(row[0]), True
            self._db.execute(
                f"INSERT INTO jobs ({_JOB_COLUMNS}) VALUES ({', '.join('?' * len(JOB_FIELDS))})",
                tuple(getattr(job, name) for name in JOB_FIELDS),
            )
            self._db.executemany(
                "INSERT INTO chunks (job_id, idx, items, created_at) VALUES (?, ?, ?, ?)",
                [(job.id, i, c.SerializeToString(), job.created_at) for i, c in enumerate(chunks)],
            )
        return job, False

    async def get(self, job_id: str) -> Job | None:
        return await self._run(self._get, job_id)

    async def next_change(self, job_id: str, seen: Progress) -> Job | None:
        return await self._changes.next_change(job_id, seen, self.get, FALLBACK_SECONDS)

    def _get(self, job_id: str) -> Job | None:
        row = self._db.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        job = job_from_fields(dict(zip(JOB_FIELDS, row, strict=True)))
        job.errors = [
            ItemFailure(item_id, message, attempts, bool(dead))
            for item_id, message, attempts, dead in self._db.execute(
                "SELECT item_id, message, attempts, dead FROM item_errors WHERE job_id = ? LIMIT ?",
                (job_id, MAX_REPORTED_ERRORS),
            )
        ]
        if job.operation == "embed" and job.terminal:
            for (payload,) in self._db.execute(
                "SELECT payload FROM results WHERE job_id = ? ORDER BY idx", (job_id,)
            ):
                job.embeddings += [
                    (e.item_id, list(e.values)) for e in pb.BatchJob.FromString(payload).embeddings
                ]
        return job

    async def list(self, tenant: str, state: str, limit: int, before: float) -> list[Job]:
        query = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE tenant = ? AND created_at < ?"
        args: list = [tenant, before]
        if state:
            query += " AND state = ?"
            args.append(state)
        query += " ORDER BY created_at DESC LIMIT ?"
        args.append(limit)
        rows = await self._run(lambda: self._db.execute(query, args).fetchall())
        return [job_from_fields(dict(zip(JOB_FIELDS, r, strict=True))) for r in rows]

    async def mark_running(self, job_id: str) -> None:
        await self._run(
            lambda: self._db.execute(
                "UPDATE jobs SET state = 'running', started_at = ? WHERE id = ? AND state = 'queued'",
                (time.time(), job_id),
            )
        )
        self._changes.notify(job_id)

    async def cancel(self, job_id: str) -> Job | None:
        def cancel() -> Job | None:
            self._db.execute(
                "UPDATE jobs SET state = 'cancelled', finished_at = ? WHERE id = ? AND state IN ('queued', 'running')",
                (time.time(), job_id),
            )
            return self._get(job_id)

        job = await self._run(cancel)
        self._changes.notify(job_id)
        return job

    # -- chunks ---------------------------------------------------------------------------

    async def claim(self, worker: str) -> Chunk | None:
        dead_lettered: list[str] = []
        try:
            return await self._run(self._claim, worker, dead_lettered)
        finally:
            for job_id in dead_lettered:
                self._changes.notify(job_id)

    def _claim(self, worker: str, dead_lettered: list[str]) -> Chunk | None:
        self._purge_due()
        while True:
            now = time.time()
            with self._transaction():
                row = self._db.execute(
                    "SELECT job_id, idx, items, attempts FROM chunks WHERE state = 'pending' "
                    "OR (state = 'leased' AND lease_until < ?) ORDER BY created_at, idx LIMIT 1",
                    (now,),
                ).fetchone()
                if row is None:
                    return None
                job_id, idx, items, attempts = row
                batch = pb.BatchItemList.FromString(items)
                if attempts >= self._max_attempts:
                    self._dead_letter(job_id, idx, batch, attempts, "failed on every attempt", now)
                    dead_lettered.append(job_id)
                    continue
                lease_until = now + self._lease
                self._db.execute(
                    "UPDATE chunks SET state = 'leased', owner = ?, lease_until = ?, attempts = attempts + 1 "
                    "WHERE job_id = ? AND idx = ?",
                    (worker, lease_until, job_id, idx),
                )
                return Chunk(job_id, idx, batch, attempts + 1, token=f"{worker}|{lease_until!r}")

    def _purge_due(self) -> None:
        """Deletes the jobs that ended more than the retention ago, with everything of theirs;
        at most every `_purge_every` seconds, in batches."""
        now = time.time()
        if now - self._purged_at < self._purge_every:
            return
        self._purged_at = now
        while True:
            with self._transaction():
                ids = [
                    row[0]
                    for row in self._db.execute(
                        "SELECT id FROM jobs WHERE finished_at > 0 AND finished_at < ? LIMIT ?",
                        (now - self._retention, PURGE_BATCH),
                    )
                ]
                marks = ", ".join("?" * len(ids))
                for table, column in _JOB_TABLES:
                    if ids:
                        self._db.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", ids)
            if len(ids) < PURGE_BATCH:
                return

    def _owned(self, chunk: Chunk, new_state: str) -> bool:
        """Moves a chunk we still hold to `new_state`; False when our lease was lost."""
        owner, lease_until = chunk.token.split("|")
        return (
            self._db.execute(
                "UPDATE chunks SET state = ?, owner = '' WHERE job_id = ? AND idx = ? AND state = 'leased' "
                "AND owner = ? AND lease_until = ?",
                (new_state, chunk.job_id, chunk.index, owner, float(lease_until)),
            ).rowcount
            == 1
        )

    async def complete(self, chunk: Chunk, result: ChunkResult) -> None:
        def complete() -> None:
            with self._transaction():
                if not self._owned(chunk, "done"):
                    return  # another worker took it over and counts it
                self._record(chunk.job_id, result.done, result.failures)
                if result.embeddings:
                    holder = pb.BatchJob(
                        embeddings=[pb.JobEmbedding(item_id=i, values=v) for i, v in result.embeddings]
                    )
                    self._db.execute(
                        "INSERT OR REPLACE INTO results (job_id, idx, payload) VALUES (?, ?, ?)",
                        (chunk.job_id, chunk.index, holder.SerializeToString()),
                    )
                self._db.execute(_FINISH, (time.time(), chunk.job_id))

        await self._run(complete)
        self._changes.notify(chunk.job_id)

    def _record(self, job_id: str, done: int, failures: list[ItemFailure]) -> None:
        self._db.execute(
            "UPDATE jobs SET done = done + ?, failed = failed + ? WHERE id = ?", (done, len(failures), job_id)
        )
        kept = self._db.execute("SELECT count(*) FROM item_errors WHERE job_id = ?", (job_id,)).fetchone()[0]
        self._db.executemany(
            "INSERT INTO item_errors (job_id, item_id, message, attempts, dead) VALUES (?, ?, ?, ?, ?)",
            [
                (job_id, f.item_id, f.message, f.attempts, int(f.dead_lettered))
                for f in failures[: max(0, MAX_REPORTED_ERRORS - kept)]
            ],
        )

    def _dead_letter(
        self, job_id: str, idx: int, batch: pb.BatchItemList, attempts: int, why: str, now: float
    ) -> None:
        self._db.execute(
            "UPDATE chunks SET state = 'dead', owner = '' WHERE job_id = ? AND idx = ?", (job_id, idx)
        )
        self._record(job_id, 0, [ItemFailure(item.id, why, attempts, True) for item in batch.items])
        self._db.execute(_FINISH, (now, job_id))

    async def retry_or_dead_letter(self, chunk: Chunk, error: str) -> None:
        def retry() -> None:
            with self._transaction():
                if chunk.attempts >= self._max_attempts:
                    if self._owned(chunk, "leased"):
                        self._dead_letter(
                            chunk.job_id, chunk.index, chunk.items, chunk.attempts, error, time.time()
                        )
                    return
                # Back off before the next attempt: the chunk stays leased to nobody until then.
                owner, lease_until = chunk.token.split("|")
                self._db.execute(
                    "UPDATE chunks SET owner = '', lease_until = ? WHERE job_id = ? AND idx = ? AND state = 'leased' "
                    "AND owner = ? AND lease_until = ?",
                    (
                        time.time() + min(30.0, 0.5 * 2**chunk.attempts),
                        chunk.job_id,
                        chunk.index,
                        owner,
                        float(lease_until),
                    ),
                )

        await self._run(retry)
        self._changes.notify(chunk.job_id)  # a dead-lettered chunk adds failures

    async def release(self, chunk: Chunk) -> None:
        def release() -> None:
            owner, lease_until = chunk.token.split("|")
            self._db.execute(
                "UPDATE chunks SET state = 'pending', owner = '', attempts = attempts - 1 WHERE job_id = ? AND idx = ? "
                "AND state = 'leased' AND owner = ? AND lease_until = ?",
                (chunk.job_id, chunk.index, owner, float(lease_until)),
            )

        await self._run(release)

    async def skip(self, chunk: Chunk) -> None:
        await self._run(lambda: self._owned(chunk, "done"))

    async def depth(self) -> int:
        def depth() -> int:
            self._purge_due()  # the dependency watcher asks every few seconds, work or not
            return self._db.execute(
                "SELECT count(*) FROM chunks WHERE state IN ('pending', 'leased')"
            ).fetchone()[0]

        return int(await self._run(depth))

    async def close(self) -> None:
        await self._run(self._db.close)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, tb) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
