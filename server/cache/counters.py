"""Cache outcomes, counted once for everything that caches.

The response cache (interceptors/cache.py) and the embedding service's per-text cache
(embeddings/text_cache.py) share one CacheCounters, so `GetCacheStats` and the
`citadel_cache_*` metrics tell of both, per tenant and method, and a backend failure is
counted (and logged at most every 30 s) in one place whichever of them met it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from redis.exceptions import RedisClusterException, RedisError

from citadel.server.degraded import FailureReporter
from citadel.server.metrics import Metrics

# What a failing backend raises (Redis down, the supervisor's socket gone): served uncached.
BACKEND_ERRORS = (RedisError, RedisClusterException, OSError)  # also a cluster with slots uncovered
T = TypeVar("T")


@dataclass(frozen=True)
class MethodCacheStats:
    path: str  # the method's full path, "/package.Service/Method"
    hits: int
    misses: int
    coalesced: int  # misses that waited on an identical call's fetch


@dataclass(frozen=True)
class CacheStats:
    backend: str
    backend_errors: int
    methods: list[MethodCacheStats]


class CacheCounters:
    def __init__(self, metrics: Metrics, backend_name: str) -> None:
        self._metrics = metrics
        self.backend_name = backend_name
        self.failures = FailureReporter(f"cache backend ({backend_name})", metrics.cache_errors)
        # (tenant, method path) -> [hits, misses, coalesced]
        self._counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])

    async def guarded(self, operation: Awaitable[T]) -> T | None:
        """The backend operation's result, or None when the backend failed (counted, logged)."""
        try:
            return await operation
        except BACKEND_ERRORS as e:
            self.failures.report(e)
            return None

    def looked_up(self, tenant: str, method: str, hits: int, misses: int) -> None:
        """One lookup's outcome: for per-text caching, a hit or miss per text."""
        if hits:
            self._metrics.child(self._metrics.cache, method, "hit").inc(hits)
        if misses:
            self._metrics.child(self._metrics.cache, method, "miss").inc(misses)
        counts = self._counts[tenant, method]
        counts[0] += hits
        counts[1] += misses

    def coalesced(self, tenant: str, method: str) -> None:
        """A miss that waited on an identical call's fetch instead of fetching."""
        self._counts[tenant, method][2] += 1

    def bypassed(self, method: str) -> None:
        """A call that asked not to use the cache (a metric only: it neither hit nor missed)."""
        self._metrics.child(self._metrics.cache, method, "bypass").inc()

    def stats(self, tenant: str) -> CacheStats:
        """Counts since start-up: `tenant`'s own, or every tenant's summed when `tenant` is ""."""
        by_method: dict[str, list[int]] = {}
        for (owner, path), counts in self._counts.items():
            if tenant and owner != tenant:
                continue
            total = by_method.setdefault(path, [0, 0, 0])
            for i, n in enumerate(counts):
                total[i] += n
        return CacheStats(
            backend=self.backend_name,
            backend_errors=self.failures.total,
            methods=[MethodCacheStats(path, *counts) for path, counts in sorted(by_method.items())],
        )
