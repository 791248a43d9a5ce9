"""A backend's concurrency cap with a bounded, prioritised wait queue.

At most `max_concurrency` requests run at once. Others wait, at most `max_queue` of them;
one more is refused at once (QueueFull → RESOURCE_EXHAUSTED). Real-time waiters go first, and
bulk (batch) work never holds more than `bulk_share` of the slots, so batch jobs yield to
interactive traffic on the same backend.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque

REALTIME = "realtime"
BULK = "bulk"


class QueueFull(Exception):
    """A backend's wait queue is full: the caller gets RESOURCE_EXHAUSTED."""


class Limiter:
    def __init__(self, max_concurrency: int, max_queue: int, bulk_share: float) -> None:
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self.bulk_cap = max(1, math.floor(max_concurrency * bulk_share))
        self.in_flight = 0
        self.bulk_in_flight = 0
        self._waiting: dict[str, deque[asyncio.Future]] = {REALTIME: deque(), BULK: deque()}

    @property
    def waiting(self) -> int:
        return len(self._waiting[REALTIME]) + len(self._waiting[BULK])

    def would_queue(self, priority: str) -> bool:
        return not self._can_start(priority) or bool(self._waiting[REALTIME])

    def full(self, priority: str) -> bool:
        """A request of this priority would be refused right now."""
        return self.would_queue(priority) and self.waiting >= self.max_queue

    def _can_start(self, priority: str) -> bool:
        if self.in_flight >= self.max_concurrency:
            return False
        return priority != BULK or self.bulk_in_flight < self.bulk_cap

    async def acquire(self, priority: str) -> None:
        """Waits for a slot (cancel to give up); QueueFull when the wait queue is full."""
        ahead = self._waiting[REALTIME] if priority == REALTIME else self.waiting
        if self._can_start(priority) and not ahead:
            self._take(priority)
            return
        if self.waiting >= self.max_queue:
            raise QueueFull
        waiter = asyncio.get_running_loop().create_future()
        queue = self._waiting[priority]
        queue.append(waiter)
        try:
            await waiter  # the slot is taken for us by _wake before the result is set
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(priority)  # granted just as we gave up: hand it on
            else:
                queue.remove(waiter)
            raise

    def release(self, priority: str) -> None:
        self.in_flight -= 1
        if priority == BULK:
            self.bulk_in_flight -= 1
        self._wake()

    def _take(self, priority: str) -> None:
        self.in_flight += 1
        if priority == BULK:
            self.bulk_in_flight += 1

    def _wake(self) -> None:
        while self.in_flight < self.max_concurrency:
            for priority in (REALTIME, BULK):
                queue = self._waiting[priority]
                if queue and self._can_start(priority):
                    waiter = queue.popleft()
                    self._take(priority)
                    waiter.set_result(None)
                    break
            else:
                return
