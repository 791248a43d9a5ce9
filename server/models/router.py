"""The model router: resolves a model name, applies its integration pattern, and sends the
texts to its backends with load balancing, concurrency limits, retries and failover.

A request's texts are cut into chunks no larger than the smallest `max_batch` among the
model's backends (so any chunk can fail over to any replica), sent in parallel, and put back
together in order. Each chunk goes to a backend picked by the model's strategy among those
routable now; a failure retries on a backend not yet tried, within the caller's deadline and
the model's retry budget. Retry-After is honoured: that backend gets nothing until then, and
when it is the only one left the chunk waits for it if the deadline allows.
"""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
import numpy as np

from citadel.server.errors import ApiError, invalid
from citadel.server.models import patterns
from citadel.server.models.backend import Backend, Skip
from citadel.server.models.balancer import make_strategy
from citadel.server.models.breaker import CLOSED, HALF_OPEN, OPEN
from citadel.server.models.catalog import BULK_ONLY, HYBRID, REALTIME, Catalog, ModelSpec
from citadel.server.models.health import HealthChecker, OutlierDetector
from citadel.server.models.limiter import REALTIME as REALTIME_PRIORITY
from citadel.server.models.limiter import QueueFull
from citadel.server.models.providers.base import BackendError, InputRejected
from citadel.server.models.retry_budget import RetryBudget
from citadel.vector.v1 import vector_service_pb2 as pb

log = logging.getLogger("citadel.models")

PATTERN_ENUM = {
    REALTIME: pb.INTEGRATION_PATTERN_REALTIME,
    HYBRID: pb.INTEGRATION_PATTERN_HYBRID,
    BULK_ONLY: pb.INTEGRATION_PATTERN_BULK_ONLY,
}
CIRCUIT_ENUM = {
    CLOSED: pb.CIRCUIT_STATE_CLOSED,
    OPEN: pb.CIRCUIT_STATE_OPEN,
    HALF_OPEN: pb.CIRCUIT_STATE_HALF_OPEN,
}
MAX_PARALLEL_CHUNKS = 4


class ModelPool:
    """One model: its backends, strategy, retry budget and learned dimension."""

    def __init__(self, spec: ModelSpec, catalog: Catalog) -> None:
        r = catalog.resilience
        self.spec = spec
        self.name = spec.name
        self.backends = [Backend(b, r, spec.name) for b in spec.backends]
        self.strategy = make_strategy(spec.strategy, [b.id for b in self.backends])
        self.budget = RetryBudget(r.retry_ratio, r.retry_min_per_second)
        self.outliers = OutlierDetector(r)
        self.dimension = spec.dimensions
        self.chunk_size = min(b.spec.max_batch for b in self.backends)
        total_concurrency = sum(b.spec.max_concurrency for b in self.backends)
        self.parallel_chunks = max(1, min(MAX_PARALLEL_CHUNKS, total_concurrency // 2))

    def identity(self) -> str:
        """Changes whenever what the name resolves to changes (cache keys include it)."""
        served = sorted({f"{b.spec.provider}:{b.spec.model}" for b in self.backends})
        return f"{self.name}/{self.dimension or '?'}/{','.join(served)}"

    def pick(self, tried: set[str], priority: str) -> Backend | None:
        now = time.monotonic()
        fresh = [b for b in self.backends if b.id not in tried]
        eligible = [b for b in fresh if b.routable(now)]
        if not eligible:
            # Panic routing (as Envoy does): when no backend is healthy, try the unhealthy or
            # ejected ones whose circuit still lets requests through rather than fail outright.
            eligible = [
                b
                for b in fresh
                if b.consistent is not False and b.breaker.available() and now >= b.not_before
            ]
        open_queue = [b for b in eligible if not b.limiter.full(priority)]
        if not open_queue:
            return eligible[0] if eligible else None  # full: acquire raises QueueFull
        return self.strategy.pick(open_queue)

    def state(self) -> pb.Model:
        now = time.monotonic()
        model = pb.Model(
            name=self.name,
            pattern=PATTERN_ENUM[self.spec.pattern],
            dimensions=self.dimension,
            strategy=self.spec.strategy,
        )
        for b in self.backends:
            model.backends.add(
                id=b.id,
                provider=b.spec.provider,
                url=b.spec.shown_url,
                weight=b.spec.weight,
                max_concurrency=b.spec.max_concurrency,
                in_flight=b.in_flight,
                healthy=b.healthy is not False,
                ejected=b.ejected(now),
                circuit=CIRCUIT_ENUM[b.breaker.state],
                latency_ewma_ms=b.latency_ewma_ms,
                consistent=b.consistent is not False,
                last_error=b.last_error,
            )
        return model


class ModelRouter:
    """The catalog's models, each a pool of backends: the embedding service's way to a model."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.pools = {name: ModelPool(spec, catalog) for name, spec in catalog.models.items()}
        self.health = HealthChecker(
            self.pools.values(), catalog.health_interval_seconds, catalog.resilience.replica_min_cosine
        )

    # -- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self.health.start()

    async def close(self) -> None:
        await self.health.stop()
        for pool in self.pools.values():
            for b in pool.backends:
                await b.provider.close()

    # -- models and embedding ------------------------------------------------------

    def pool(self, model: str) -> ModelPool:
        pool = self.pools.get(model or self.catalog.default)
        if pool is None:
            raise ApiError(
                grpc.StatusCode.NOT_FOUND,
                f"model: {model!r} is not served; known models: {', '.join(sorted(self.pools))}",
            )
        return pool

    def identity(self, model: str) -> str:
        pool = self.pools.get(model or self.catalog.default)
        return pool.identity() if pool is not None else model

    async def embed(
        self,
        model: str,
        texts: list[str],
        normalize: bool,
        deadline: float | None,
        priority: str = REALTIME_PRIORITY,
        field: str = "texts",
    ) -> tuple[str, np.ndarray]:
        """The model's resolved name and one row per text, in order, by `deadline` (a
        time.monotonic() value; None allows the catalog's request timeout). Errors about the
        input name `field` (`texts[3]`, or `field` itself for a single-text field)."""
        pool = self.pool(model)
        patterns.decide(pool.spec, len(texts), True, priority)  # refuses bulk-only in real time
        if not texts:
            return pool.name, np.zeros((0, pool.dimension), dtype=np.float32)
        if deadline is None:
            deadline = time.monotonic() + self.catalog.request_timeout_seconds
        size = pool.chunk_size
        starts = range(0, len(texts), size)
        gate = asyncio.Semaphore(pool.parallel_chunks)

        async def one(start: int) -> np.ndarray:
            async with gate:
                return await self._chunk(
                    pool, texts[start : start + size], start, len(texts), priority, deadline, field
                )

        if len(starts) == 1:
            parts = [await self._chunk(pool, texts, 0, len(texts), priority, deadline, field)]
        else:
            tasks = [asyncio.create_task(one(s)) for s in starts]
            try:
                parts = await asyncio.gather(*tasks)
            except BaseException:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        vectors = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.maximum(norms, 1e-12)
        return pool.name, vectors.astype(np.float32, copy=False)

    def list_models(self) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(
            models=[p.state() for p in self.pools.values()], default_model=self.catalog.default
        )

    # -- one chunk, with failover ----------------------------------------------------

    async def _chunk(
        self,
        pool: ModelPool,
        texts: list[str],
        offset: int,
        total: int,
        priority: str,
        deadline: float,
        field: str,
    ) -> np.ndarray:
        pool.budget.record_request()
        tried: set[str] = set()
        waiting_out: set[str] = set()  # tried, but only asked us to come back later
        queue_full: list[Backend] = []
        last: BackendError | None = None
        attempts = 0
        while True:
            backend = pool.pick(tried, priority)
            if backend is None:
                backend = await self._wait_for_retry_after(pool, tried, waiting_out, deadline)
                if backend is None:
                    raise self._exhausted(pool, queue_full, last, deadline)
            if attempts and not pool.budget.try_retry():
                raise ApiError(
                    grpc.StatusCode.UNAVAILABLE,
                    f"model {pool.name!r}: retry budget exhausted; last error: {last}",
                )
            try:
                vectors = await backend.call(texts, priority, deadline)
            except QueueFull:
                tried.add(backend.id)
                queue_full.append(backend)
                continue
            except Skip:
                tried.add(backend.id)
                continue
            except TimeoutError:
                raise self._late(pool, last) from None
            except InputRejected as e:
                raise invalid(
                    _input_name(field, offset, len(texts), total), f"rejected by model {pool.name!r}: {e}"
                ) from None
            except BackendError as e:
                attempts += 1
                last = e
                tried.add(backend.id)
                if e.retry_after is not None:
                    waiting_out.add(backend.id)
                self.health.observe_failure(backend, e)  # unreachable: unhealthy now, not at the next probe
                pool.outliers.observe_failure(backend, pool.backends)
                continue
            problem = self._check_dimension(pool, backend, vectors)
            if problem:
                attempts += 1
                last = BackendError(problem)
                tried.add(backend.id)
                continue
            return vectors

    @staticmethod
    def _check_dimension(pool: ModelPool, backend: Backend, vectors: np.ndarray) -> str:
        got = int(vectors.shape[1])
        if not pool.dimension:
            pool.dimension = got
            return ""
        if got == pool.dimension:
            return ""
        problem = f"replica guard: answered {got} values, model {pool.name!r} has {pool.dimension}"
        backend.consistent = False
        backend.last_error = problem
        log.warning("model %s: backend %s kept out: %s", pool.name, backend.id, problem)
        return problem

    async def _wait_for_retry_after(
        self, pool: ModelPool, tried: set[str], waiting_out: set[str], deadline: float
    ) -> Backend | None:
        """Every backend is tried; if some only asked for time (Retry-After) and it ends within
        the deadline, wait for the earliest and try it again."""
        candidates = [b for b in pool.backends if b.id in waiting_out and b.consistent is not False]
        if not candidates:
            return None
        backend = min(candidates, key=lambda b: b.not_before)
        pause = backend.not_before - time.monotonic()
        if pause >= deadline - time.monotonic():
            return None
        await asyncio.sleep(max(0.0, pause))
        tried.discard(backend.id)
        waiting_out.discard(backend.id)
        return backend if backend.breaker.available() else None

    @staticmethod
    def _late(pool: ModelPool, last: BackendError | None) -> ApiError:
        detail = f"; last error: {last}" if last else ""
        return ApiError(grpc.StatusCode.DEADLINE_EXCEEDED, f"model {pool.name!r}: deadline exceeded{detail}")

    @staticmethod
    def _exhausted(
        pool: ModelPool, queue_full: list[Backend], last: BackendError | None, deadline: float
    ) -> ApiError:
        now = time.monotonic()
        if now >= deadline:
            return ModelRouter._late(pool, last)
        if queue_full and last is None:
            busy = "; ".join(
                f"{b.id}: {b.in_flight} in flight, {b.limiter.waiting} waiting (max_queue {b.spec.max_queue})"
                for b in queue_full
            )
            return ApiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"model {pool.name!r}: every backend is at its concurrency limit with a full wait queue ({busy})",
            )
        if last is not None and not last.counts_as_failure:  # the backends said 429
            return ApiError(grpc.StatusCode.RESOURCE_EXHAUSTED, f"model {pool.name!r}: {last}")
        states = "; ".join(b.why_not(now) for b in pool.backends)
        return ApiError(
            grpc.StatusCode.UNAVAILABLE, f"model {pool.name!r}: no backend could answer ({states})"
        )


def _input_name(field: str, offset: int, count: int, total: int) -> str:
    """`text` / `query_text` for a single-text field; `texts[3]` or `texts[32:64]` in a list."""
    if field != "texts":
        return field
    if count == 1:
        return f"{field}[{offset}]"
    return f"{field}[{offset}:{offset + count}]"
