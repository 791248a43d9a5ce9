"""Chooses the job queue: Redis Streams when Redis is configured, else SQLite in the data dir."""

from __future__ import annotations

import redis.asyncio as aioredis

from citadel.server.config import Settings
from citadel.server.jobs.queue import JobQueue
from citadel.server.jobs.queue_redis import RedisQueue
from citadel.server.jobs.queue_sqlite import SqliteQueue


def open_queue(settings: Settings, redis: aioredis.Redis | None) -> JobQueue:
    if redis is not None:
        return RedisQueue(
            redis,
            settings.jobs_lease_seconds,
            settings.jobs_max_attempts,
            retention_seconds=settings.jobs_retention_seconds,
        )
    return SqliteQueue(
        settings.data_dir / "jobs.sqlite3",
        settings.jobs_lease_seconds,
        settings.jobs_max_attempts,
        retention_seconds=settings.jobs_retention_seconds,
    )
