"""Serving on when a shared backend (Redis) fails, and saying so without flooding the log.

FailureReporter: the cache and the rate limiter must never fail a request because Redis is
down; they fall back (serve uncached, let the call through), count every failure and log once
per interval. Outage: loops that see both failures and successes (the dependency watcher, the
batch workers' claim loop) log once when an outage starts and once when it ends.
"""

from __future__ import annotations

import logging
import time

from citadel.server.redaction import redact_text


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


class Outage:
    """One line when something starts failing (with the error), one when it works again (how
    long, how many failures): a loop that retries while a dependency is down logs two lines
    per outage, not one per attempt."""

    def __init__(self, what: str, failures: str = "failures", logger: logging.Logger | None = None) -> None:
        self._what = what
        self._failures = failures  # what a failure is called in the recovery line
        self._log = logger or logging.getLogger("citadel.degraded")
        self._started: float | None = None
        self.count = 0  # failures in the current (or last) outage

    @property
    def ongoing(self) -> bool:
        return self._started is not None

    def failed(self, error: BaseException | str, state: str = "unavailable") -> bool:
        """Counts a failure; True (and the outage's one line) when it starts an outage."""
        if self._started is not None:
            self.count += 1
            return False
        self._started = time.monotonic()
        self.count = 1
        reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self._log.warning("%s %s: %s", self._what, state, redact_text(reason))
        return True

    def recovered(self) -> bool:
        """A success: True (and the recovery line) when it ends an outage."""
        if self._started is None:
            return False
        lasted = time.monotonic() - self._started
        self._started = None
        self._log.info(
            "%s running again after %.1f s (%d %s)", self._what, lasted, self.count, self._failures
        )
        return True
