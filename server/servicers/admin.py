"""AdminService: component status, cache statistics and flush."""

from __future__ import annotations

from citadel.admin.v1 import admin_service_pb2 as pb
from citadel.server.chain import Call
from citadel.server.interceptors.cache import CacheInterceptor
from citadel.server.lifecycle import Lifecycle
from citadel.server.servicers.status import status_response


def _rate(hits: int, misses: int) -> float:
    return hits / (hits + misses) if hits + misses else 0.0


class AdminServicer:
    def __init__(
        self, cache: CacheInterceptor | None, lifecycle: Lifecycle, worker: int = 0, workers: int = 1
    ) -> None:
        self._cache = cache
        self._lifecycle = lifecycle
        self._worker = worker  # which of `workers` processes this is (0..N-1)
        self._workers = workers

    async def GetServiceStatus(
        self, request: pb.GetServiceStatusRequest, call: Call
    ) -> pb.GetServiceStatusResponse:
        return status_response(self._lifecycle, self._worker, self._workers)

    async def GetCacheStats(self, request: pb.GetCacheStatsRequest, call: Call) -> pb.GetCacheStatsResponse:
        if self._cache is None:
            return pb.GetCacheStatsResponse()
        response = pb.GetCacheStatsResponse(
            backend=self._cache.backend.name,
            backend_errors=self._cache.failures.total,
        )
        for path, (hits, misses, coalesced) in sorted(self._cache.counts.items()):
            response.methods.add(
                method=path.lstrip("/"),
                hits=hits,
                misses=misses,
                hit_rate=_rate(hits, misses),
                coalesced=coalesced,
            )
            response.hits += hits
            response.misses += misses
        response.hit_rate = _rate(response.hits, response.misses)
        usage = await self._cache.usage()
        if usage is not None:
            response.entries, response.bytes = usage
        return response

    async def FlushCache(self, request: pb.FlushCacheRequest, call: Call) -> pb.FlushCacheResponse:
        if self._cache is not None:
            await self._cache.backend.flush()
        return pb.FlushCacheResponse()
