"""One backend of one model at run time: its provider, concurrency limiter, circuit breaker,
outlier state, health, replica-guard verdict and latency EWMA.

`call` is the single way traffic reaches a backend, so every request feeds the same counters
that routing, outlier detection and ListModels read.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np

from citadel.server.models.breaker import CircuitBreaker
from citadel.server.models.catalog import BackendSpec, Resilience
from citadel.server.models.limiter import Limiter
from citadel.server.models.providers import make_provider
from citadel.server.models.providers.base import BackendError, InputRejected, Provider
from citadel.server.redaction import redact_text

log = logging.getLogger("citadel.models")


class Skip(Exception):
    """This backend cannot take the request right now (circuit raced shut): try another,
    without counting a failure or spending a retry."""


class Backend:
    def __init__(self, spec: BackendSpec, resilience: Resilience, model: str) -> None:
        self.spec = spec
        self.model = model
        self.id = spec.id
        self.weight = spec.weight
        self.provider: Provider = make_provider(spec)
        self.limiter = Limiter(spec.max_concurrency, spec.max_queue, resilience.bulk_share)
        self.breaker = CircuitBreaker(resilience.breaker_failures, resilience.breaker_open_seconds)
        self._alpha = resilience.latency_ewma_alpha
        self.latency_ewma_ms = 0.0
        self.healthy: bool | None = None  # None until the first active check
        self.consistent: bool | None = None  # replica guard; None until judged
        self.last_error = ""
        self.probe: np.ndarray | None = None  # last health-probe vector
        # Outlier detection (passive).
        self.consecutive_failures = 0
        self.ejected_until = 0.0
        self.times_ejected = 0
        self.not_before = 0.0  # Retry-After: no traffic before this (monotonic)
        self.requests = 0
        self.failures = 0

    @property
    def in_flight(self) -> int:
        return self.limiter.in_flight

    def ejected(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) < self.ejected_until

    def routable(self, now: float) -> bool:
        """Healthy, consistent, not ejected, circuit letting requests through, no Retry-After."""
        return (
            self.healthy is not False
            and self.consistent is not False
            and not self.ejected(now)
            and self.breaker.available()
            and now >= self.not_before
        )

    def why_not(self, now: float) -> str:
        reasons = []
        if self.consistent is False:
            reasons.append("kept out by the replica guard")
        if self.healthy is False:
            reasons.append("failing health checks")
        if self.ejected(now):
            reasons.append(f"ejected for {self.ejected_until - now:.1f} s")
        if not self.breaker.available():
            reasons.append(f"circuit {self.breaker.state}")
        if now < self.not_before:
            reasons.append(f"asked to retry after {self.not_before - now:.1f} s")
        reason = ", ".join(reasons) or "tried"
        return f"{self.id}: {reason}" + (f" (last error: {self.last_error})" if self.last_error else "")

    async def call(self, texts: list[str], priority: str, deadline: float) -> np.ndarray:
        """Embeds on this backend; raises QueueFull, Skip, BackendError or InputRejected."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        async with asyncio.timeout(remaining):
            await self.limiter.acquire(priority)
        try:
            if not self.breaker.allow():
                raise Skip
            self.requests += 1
            started = time.perf_counter()
            try:
                vectors = await self.provider.embed(texts, deadline - time.monotonic())
            except BackendError as e:
                self.failed(str(e), counts=e.counts_as_failure, retry_after=e.retry_after)
                raise
            except InputRejected:
                self.succeeded(None)  # the backend is fine; the input is not
                raise
            except BaseException:
                self.breaker.record_abandoned()
                raise
            self.succeeded((time.perf_counter() - started) * 1000)
            return vectors
        finally:
            self.limiter.release(priority)

    def succeeded(self, latency_ms: float | None) -> None:
        before = self.breaker.state
        self.breaker.record_success()
        self._circuit_moved(before)
        self.consecutive_failures = 0
        if latency_ms is not None:
            a = self._alpha
            self.latency_ewma_ms = (
                latency_ms if self.latency_ewma_ms == 0 else (a * latency_ms + (1 - a) * self.latency_ewma_ms)
            )

    def failed(self, error: str, counts: bool = True, retry_after: float | None = None) -> None:
        self.last_error = redact_text(error)  # shown by ListModels and logs: never a credential
        if retry_after is not None:
            self.not_before = max(self.not_before, time.monotonic() + retry_after)
        if counts:
            self.failures += 1
            self.consecutive_failures += 1
            before = self.breaker.state
            self.breaker.record_failure()
            self._circuit_moved(before)
        else:
            self.breaker.record_abandoned()

    def _circuit_moved(self, before: str) -> None:
        after = self.breaker.state
        if after != before:
            log.warning(
                "model %s: backend %s circuit %s -> %s%s",
                self.model,
                self.id,
                before,
                after,
                f" ({self.last_error})" if after != "closed" else "",
            )

    def eject(self, now: float, base: float, cap: float) -> None:
        self.times_ejected += 1
        self.ejected_until = now + min(cap, base * self.times_ejected)
