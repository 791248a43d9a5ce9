"""Backend health: active checks on a timer, passive outlier detection on every failure.

Active: every `interval` seconds each backend embeds PROBE_TEXT (outside its concurrency
limit and its circuit breaker, like a load balancer's own health connection: a probe is not a
user request, so it runs whatever the circuit's state and whoever holds its half-open trial). An
answer of the model's dimension marks it healthy; an error or a wrong dimension marks it
unhealthy at once and takes it out of rotation. An unhealthy backend is probed again every
RECHECK_SECONDS, so its return shows within about a second. When the circuit is half-open and
its trial is free, the probe takes it: its success closes the circuit. The probe vectors then go
to the replica guard.

Passive health: a user request that cannot reach a backend at all (connection refused) marks it
unhealthy at once, under load, without waiting for the next probe; its next probe (within
RECHECK_SECONDS) says when it is back.

Passive (outlier detection, as Envoy does it): `eject_failures` consecutive failures on real
traffic eject the backend for base × (times ejected) seconds, up to a cap; never more than
`max_ejected_percent` of a model's backends are ejected at once (at least one may be, when the
model has two or more).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING

import httpx

from citadel.server.models import replicas
from citadel.server.models.backend import Backend
from citadel.server.models.breaker import HALF_OPEN
from citadel.server.models.catalog import Resilience
from citadel.server.models.providers.base import BackendError, InputRejected
from citadel.server.periodic import Periodic
from citadel.server.redaction import redact_text

if TYPE_CHECKING:
    from citadel.server.models.router import ModelPool

log = logging.getLogger("citadel.models")

PROBE_TEXT = "Citadel health probe: the quick brown fox jumps over the lazy dog."
PROBE_TIMEOUT_SECONDS = 5.0
RECHECK_SECONDS = 1.0  # how often an unhealthy backend is probed (the interval, if shorter)


class OutlierDetector:
    def __init__(self, resilience: Resilience) -> None:
        self._r = resilience

    def allowed_ejections(self, count: int) -> int:
        if count < 2:
            return 0  # ejecting a model's only backend would leave nothing; its breaker guards it
        return max(1, math.floor(count * self._r.max_ejected_percent / 100))

    def observe_failure(self, backend: Backend, peers: Sequence[Backend]) -> bool:
        """Ejects `backend` if it is an outlier and the cap allows; True when it did."""
        now = time.monotonic()
        if backend.consecutive_failures < self._r.eject_failures or backend.ejected(now):
            return False
        if sum(1 for b in peers if b.ejected(now)) >= self.allowed_ejections(len(peers)):
            return False
        backend.eject(now, self._r.eject_base_seconds, self._r.eject_max_seconds)
        backend.consecutive_failures = 0
        log.warning(
            "backend %s ejected for %.1f s after %d consecutive failures (last: %s)",
            backend.id,
            backend.ejected_until - now,
            self._r.eject_failures,
            backend.last_error,
        )
        return True


class HealthChecker:
    def __init__(self, pools: Sequence[ModelPool], interval: float, min_cosine: float) -> None:
        self._pools = list(pools)
        self._interval = interval
        self._tick = min(interval, RECHECK_SECONDS)
        self._min_cosine = min_cosine
        self._rounds = Periodic("model-health-checks", self.check_due, self._tick, log)
        self._next_probe: dict[str, float] = {}  # backend id -> when it is due (monotonic)

    def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    async def check_all(self) -> None:
        """Probes every backend now."""
        await self._round(lambda backend: True)

    async def check_due(self) -> None:
        """Probes the backends due: healthy ones every interval, unhealthy ones every tick."""
        now = time.monotonic()
        await self._round(lambda backend: now >= self._next_probe.get(backend.id, 0.0))

    def observe_failure(self, backend: Backend, error: BackendError) -> None:
        """Passive health: a user request failed on `backend`. When it could not even connect,
        the backend is down: unhealthy now, probed again at the next tick."""
        if not _unreachable(error) or backend.healthy is False:
            return
        backend.healthy = False
        backend.last_error = redact_text(str(error))
        self._next_probe[backend.id] = 0.0
        log.warning("model %s: backend %s unhealthy: %s", backend.model, backend.id, backend.last_error)

    async def _round(self, due) -> None:
        shared: dict[str, asyncio.Future] = {}  # this round's probe per probe_key
        pools = [(pool, [b for b in pool.backends if due(b)]) for pool in self._pools]
        await asyncio.gather(
            *(self.check_pool(pool, shared, backends) for pool, backends in pools if backends)
        )

    async def check_pool(
        self, pool: ModelPool, shared: dict[str, asyncio.Future], backends: Sequence[Backend] | None = None
    ) -> None:
        await asyncio.gather(
            *(self.probe(pool, b, shared) for b in (pool.backends if backends is None else backends))
        )
        probes = [(b.id, b.probe) for b in pool.backends if b.probe is not None]
        if not probes:
            return
        verdict = replicas.judge(probes, pool.spec.dimensions, self._min_cosine)
        if verdict.dimension:
            pool.dimension = verdict.dimension
        for b in pool.backends:
            problem = verdict.problems.get(b.id)
            if problem is None:
                continue
            if problem and b.consistent is not False:
                log.warning("model %s: backend %s kept out: %s", pool.name, b.id, problem)
            b.consistent = not problem
            if problem:
                b.last_error = problem

    async def probe(self, pool: ModelPool, backend: Backend, shared: dict[str, asyncio.Future]) -> None:
        # A free half-open trial is taken, so a passing probe closes the circuit; otherwise the
        # probe runs beside the breaker (open, or a real request holds the trial) and judges
        # health alone.
        trial = backend.breaker.state == HALF_OPEN and backend.breaker.allow()
        timeout = min(PROBE_TIMEOUT_SECONDS, backend.spec.timeout_seconds, self._interval * 2)
        try:
            vectors = await _probe_embedding(backend, timeout, shared)
        except (BackendError, InputRejected) as e:
            self._next_probe[backend.id] = time.monotonic() + self._tick
            if backend.healthy is not False:
                log.warning(
                    "model %s: backend %s unhealthy: health check: %s",
                    pool.name,
                    backend.id,
                    redact_text(str(e)),
                )
            backend.healthy = False
            backend.probe = None
            backend.last_error = redact_text(f"health check: {e}")
            if trial:
                backend.failed(backend.last_error)
            return
        except BaseException:
            if trial:
                backend.breaker.record_abandoned()
            raise
        vector = vectors[0]
        expected = pool.spec.dimensions
        backend.probe = vector
        if expected and vector.shape[0] != expected:
            self._next_probe[backend.id] = time.monotonic() + self._tick
            backend.healthy = False
            backend.last_error = f"health check: answered {vector.shape[0]} values, the model has {expected}"
            if trial:
                backend.failed(backend.last_error)
            return
        self._next_probe[backend.id] = time.monotonic() + self._interval
        if backend.healthy is False:
            log.info("model %s: backend %s healthy again", pool.name, backend.id)
        backend.healthy = True
        if trial:
            backend.succeeded(None)  # the half-open probe passed: close the circuit


def _unreachable(error: BackendError) -> bool:
    """Did the call fail to connect at all? HTTP providers raise BackendError from the
    transport's error (kept as its context): refused or unroutable is httpx.ConnectError."""
    return isinstance(error.__context__, httpx.ConnectError)


def _probe_embedding(backend: Backend, timeout: float, shared: dict[str, asyncio.Future]) -> Awaitable:
    """The backend's answer to PROBE_TEXT. Backends whose providers share a probe_key share
    one embed call within a round: they are one model instance, so one answer is theirs."""
    key = backend.provider.probe_key
    if key is None:
        return backend.provider.embed([PROBE_TEXT], timeout)
    if key not in shared:
        shared[key] = asyncio.ensure_future(backend.provider.embed([PROBE_TEXT], timeout))
    return shared[key]
