"""AdminService: component status, cache statistics and flush.

The cache RPCs act within the caller's tenant: a tenant's admin sees its own tenant's counts and
flushes its own entries; only a caller without a tenant (an operator's key) sees and flushes
every tenant's, and the backend's size, which is not per tenant.
"""

from __future__ import annotations

from citadel.admin.v1 import admin_service_pb2 as pb
from citadel.server.auth.principal import ANONYMOUS, Principal
from citadel.server.chain import Call
from citadel.server.interceptors.cache import CacheInterceptor
from citadel.server.lifecycle import Lifecycle
from citadel.server.servicers.status import status_response


def _rate(hits: int, misses: int) -> float:
    return hits / (hits + misses) if hits + misses else 0.0


def _principal(call: Call) -> Principal:
    return call.state.get("principal", ANONYMOUS)


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
        return status_response(self._lifecycle, self._worker, self._workers, _principal(call))

    async def GetCacheStats(self, request: pb.GetCacheStatsRequest, call: Call) -> pb.GetCacheStatsResponse:
        if self._cache is None:
            return pb.GetCacheStatsResponse()
        tenant = _principal(call).tenant
        stats = self._cache.stats(tenant)
        response = pb.GetCacheStatsResponse(backend=stats.backend, backend_errors=stats.backend_errors)
        for method in stats.methods:
            response.methods.add(
                method=method.path.lstrip("/"),
                hits=method.hits,
                misses=method.misses,
                hit_rate=_rate(method.hits, method.misses),
                coalesced=method.coalesced,
            )
            response.hits += method.hits
            response.misses += method.misses
        response.hit_rate = _rate(response.hits, response.misses)
        if not tenant:  # entries and bytes are the whole backend's: not one tenant's to see
            usage = await self._cache.usage()
            if usage is not None:
                response.entries, response.bytes = usage
        return response

    async def FlushCache(self, request: pb.FlushCacheRequest, call: Call) -> pb.FlushCacheResponse:
        if self._cache is not None:
            await self._cache.flush(_principal(call).tenant)
        return pb.FlushCacheResponse()
