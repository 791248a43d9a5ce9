"""Serving on when a shared backend (Redis) fails: count every failure, log once per interval.

The cache and the rate limiter must never fail a request because Redis is down; they fall
back (serve uncached, let the call through) and say so without flooding the log.
"""

from __future__ import annotations

import logging
import time


class FailureReporter:
    def __init__(self, what: str, counter, interval_seconds: float = 30.0) -> None:
        self._what = what
        self._counter = counter
        self._interval = interval_seconds
        self._last = float("-inf")
        self._since_last = 0
        self.total = 0
        self._log = logging.getLogger("citadel.degraded")

    def report(self, error: BaseException) -> None:
        self._counter.inc()
        self.total += 1
        self._since_last += 1
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._log.warning(
                "%s unavailable (%s: %s); serving without it (%d failures since last report)",
                self._what,
                type(error).__name__,
                error,
                self._since_last,
            )
            self._last = now
            self._since_last = 0
