"""What the supervisor holds for its workers: every piece of state that must be one, not N.

- The embedded store (its data dir takes one owner). A Qdrant URL needs no holder: each
  worker opens its own client to the same server.
- Without Redis: the response cache, the rate-limit buckets and the job queue, so an upsert
  in one worker invalidates the others' cached searches, a caller's limit is one limit, and
  a chunk is claimed once. With Redis, workers share them through Redis as replicas do.
"""

from __future__ import annotations

import logging

from citadel.server.config import Settings

log = logging.getLogger("citadel.workers")


async def open_shared(settings: Settings) -> dict[str, object]:
    """The objects to host for workers with these settings (already resolved: `redis_url` is
    empty when Redis is not in use)."""
    # Imported here, not at the top: the supervisor starts its workers first, and they import
    # the same modules meanwhile.
    from citadel.server.cache.memory import MemoryCache
    from citadel.server.jobs.factory import open_queue
    from citadel.server.ratelimit.buckets import InProcessBuckets
    from citadel.server.store.factory import open_store

    shared: dict[str, object] = {}
    if not settings.qdrant_url:
        shared["store"] = await open_store(settings)
    if not settings.redis_url:
        try:
            if settings.cache_enabled:
                shared["cache"] = MemoryCache(settings.cache_max_entries, settings.cache_max_bytes)
            shared["buckets"] = InProcessBuckets()
            queue = open_queue(settings, None)
            shared["queue"] = queue
            await queue.depth()  # the queue file opens
        except BaseException:
            await close_shared(shared)
            raise
    return shared


async def close_shared(shared: dict[str, object]) -> None:
    """After every worker has stopped: the queue, then the store, flushed and released."""
    for name in ("queue", "store"):
        obj = shared.pop(name, None)
        if obj is not None:
            try:
                await obj.close()
            except Exception:
                log.exception("closing the shared %s failed", name)
