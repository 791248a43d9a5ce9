"""A retry budget (as Linkerd and Envoy keep one): retries may add at most `ratio` of the
requests seen over the last `window` seconds, plus `min_per_second` whatever the traffic, so a
failing backend cannot turn retries into a storm that takes the others down too."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class RetryBudget:
    def __init__(
        self,
        ratio: float,
        min_per_second: float,
        window: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.window = window
        self._clock = clock
        self._buckets: deque[list] = deque()  # [second, requests, retries], oldest first

    def _bucket(self) -> list:
        second = math.floor(self._clock())
        while self._buckets and self._buckets[0][0] <= second - self.window:
            self._buckets.popleft()
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append([second, 0, 0])
        return self._buckets[-1]

    def record_request(self) -> None:
        self._bucket()[1] += 1

    def try_retry(self) -> bool:
        """Spend one retry if the budget allows it."""
        current = self._bucket()
        requests = sum(b[1] for b in self._buckets)
        retries = sum(b[2] for b in self._buckets)
        if retries >= self.min_per_second * self.window + self.ratio * requests:
            return False
        current[2] += 1
        return True
