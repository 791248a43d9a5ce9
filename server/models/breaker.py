"""A circuit breaker per backend: closed → open → half-open (one probe) → closed.

Closed: requests flow; `failure_threshold` consecutive failures open it. Open: nothing is sent
until `open_seconds` pass. Half-open: exactly one request (a real one or the health check)
is let through as a probe; its success closes the circuit, its failure opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(
        self, failure_threshold: int, open_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.failure_threshold = failure_threshold
        self.open_seconds = open_seconds
        self._clock = clock
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self.times_opened = 0

    @property
    def state(self) -> str:
        if self._state == OPEN and self._clock() - self._opened_at >= self.open_seconds:
            return HALF_OPEN
        return self._state

    def available(self) -> bool:
        """Would `allow` let a request through now (without taking the probe)?"""
        state = self.state
        return state == CLOSED or (state == HALF_OPEN and not self._probing)

    def allow(self) -> bool:
        """Take permission for one request; in half-open, only the first caller gets it."""
        state = self.state
        if state == CLOSED:
            return True
        if state == HALF_OPEN and not self._probing:
            self._state = HALF_OPEN
            self._probing = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        if self._state == OPEN:
            return  # a request sent before the circuit opened: only the probe may close it
        self._probing = False
        self._state = CLOSED

    def record_failure(self) -> None:
        self._failures += 1
        if self._state == HALF_OPEN or (self._state == CLOSED and self._failures >= self.failure_threshold):
            self._open()

    def record_abandoned(self) -> None:
        """The request ended without a verdict (cancelled): free the probe for another."""
        self._probing = False

    def _open(self) -> None:
        self._state = OPEN
        self._opened_at = self._clock()
        self._probing = False
        self.times_opened += 1
