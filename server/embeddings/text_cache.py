"""Embeddings cached one text at a time, on the gateway's cache backend.

A call with some known texts sends only the unknown ones to the model, and identical
concurrent misses wait for one model call (single flight). An entry's key holds the tenant
(tenants never share entries, and a tenant's admin flush reaches its own), what the model
name resolves to (re-pointing a name never serves the old vectors) and normalize; its value
is the vector as little-endian float32. Entries belong to no collection: writes never
invalidate them, they expire after the embedding TTL. A failing backend serves uncached.
Outcomes are counted under the calling method in the counters the response cache uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np

from citadel.server.cache import status
from citadel.server.cache.base import CacheBackend
from citadel.server.cache.counters import CacheCounters
from citadel.server.cache.single_flight import SingleFlight

_FLOAT32 = np.dtype("<f4")


@dataclass(frozen=True)
class KeyParts:
    """What one text's cached embedding depends on, besides the text."""

    tenant: str
    model_identity: str  # what the model name resolves to (ModelRouter.identity)
    normalize: bool


def _digest(*parts: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p.encode())
        h.update(b"\x00")
    return h.hexdigest()


class TextCache:
    def __init__(self, backend: CacheBackend, counters: CacheCounters, ttl_seconds: float) -> None:
        self.backend = backend
        self._counters = counters
        self._ttl = ttl_seconds  # [cache.ttl_seconds] embedding
        self._flight = SingleFlight()

    def bypassed(self, method: str) -> str:
        """Counts a call that asked not to use the cache; the outcome to report."""
        self._counters.bypassed(method)
        return status.BYPASS

    async def embed(
        self,
        texts: Sequence[str],
        parts: KeyParts,
        method: str,
        compute: Callable[[list[str]], Awaitable[np.ndarray]],
    ) -> tuple[np.ndarray, str]:
        """One row per text, in order, the cached ones read and the others from `compute`
        (called with each missing text once, in first-seen order), and the cache outcome
        (a `cache.status` constant). Counted under `method`, the caller's gRPC path."""
        keys = [
            _digest("embedding", parts.tenant, parts.model_identity, str(parts.normalize), t) for t in texts
        ]
        found = await self._counters.guarded(self.backend.lookup("", keys, tenant=parts.tenant))
        if found is None:
            return await compute(list(texts)), status.UNAVAILABLE
        rows: dict[str, np.ndarray] = {}
        store_keys: dict[str, str] = {}  # missing text -> the versioned key to store it under
        for text, entry in zip(texts, found, strict=True):
            if entry.value is not None:
                rows[text] = np.frombuffer(entry.value, dtype=_FLOAT32)
            else:
                store_keys.setdefault(text, entry.key)
        hits = sum(1 for e in found if e.value is not None)
        self._counters.looked_up(parts.tenant, method, hits, len(found) - hits)
        missing = list(store_keys)
        outcome = status.HIT if not missing else status.PARTIAL if rows else status.MISS
        if missing:

            async def compute_and_store() -> np.ndarray:
                # Stored before the flight ends, so no later miss can start a second flight.
                vectors = await compute(missing)
                fresh = [
                    (store_keys[t], row.astype(_FLOAT32, copy=False).tobytes())
                    for t, row in zip(missing, vectors, strict=True)
                ]
                await self._counters.guarded(self.backend.store(fresh, self._ttl))
                return vectors

            vectors, leader = await self._flight.run(_digest(*store_keys.values()), compute_and_store)
            if not leader:
                self._counters.coalesced(parts.tenant, method)
            rows.update(zip(missing, vectors, strict=True))
        return np.stack([rows[t] for t in texts]).astype(np.float32, copy=False), outcome
