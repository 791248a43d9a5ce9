"""The routing parts on their own, driven directly: breaker states on a controlled clock,
strategy distributions, limiter priorities, the retry budget and the replica guard."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pytest

from citadel.server.models import replicas
from citadel.server.models.balancer import LeastConnections, PowerOfTwoChoices, RoundRobin, Weighted
from citadel.server.models.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from citadel.server.models.limiter import BULK, REALTIME, Limiter, QueueFull
from citadel.server.models.retry_budget import RetryBudget


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_closed_open_half_open_closed():
    clock = Clock()
    b = CircuitBreaker(failure_threshold=3, open_seconds=5, clock=clock)
    b.record_failure()
    b.record_failure()
    b.record_success()  # resets the streak
    b.record_failure()
    b.record_failure()
    assert b.state == CLOSED and b.allow()
    b.record_failure()
    assert b.state == OPEN and not b.allow() and not b.available()
    clock.now += 4.9
    assert b.state == OPEN
    b.record_success()  # a straggler sent before the circuit opened does not close it
    assert b.state == OPEN
    clock.now += 0.2
    assert b.state == HALF_OPEN and b.available()
    assert b.allow()  # the single probe ...
    assert not b.allow() and not b.available()  # ... and nobody else
    b.record_failure()
    assert b.state == OPEN and b.times_opened == 2
    clock.now += 5
    assert b.allow()
    b.record_abandoned()  # the probe was cancelled: another caller may probe
    assert b.allow()
    b.record_success()
    assert b.state == CLOSED and b.allow() and b.allow()


@dataclass
class Fake:
    id: str
    weight: int = 1
    in_flight: int = 0
    latency_ewma_ms: float = 0.0


def test_round_robin_takes_turns_and_skips_ineligible():
    a, b, c = Fake("a"), Fake("b"), Fake("c")
    rr = RoundRobin(["a", "b", "c"])
    assert [rr.pick([a, b, c]).id for _ in range(6)] == list("abcabc")
    assert [rr.pick([a, c]).id for _ in range(4)] == list("acac")


def test_weighted_gives_each_exactly_its_weight_interleaved():
    backends = [Fake("a", 1), Fake("b", 2), Fake("c", 3)]
    w = Weighted()
    picks = [w.pick(backends).id for _ in range(60)]
    assert Counter(picks) == {"a": 10, "b": 20, "c": 30}
    assert Counter(picks[:6]) == {"a": 1, "b": 2, "c": 3}  # every cycle of six, not in bursts
    assert "ccc" not in "".join(picks)


def test_least_connections_and_p2c_prefer_fewer_in_flight():
    busy, idle, idle2 = Fake("busy", in_flight=5), Fake("idle"), Fake("idle2")
    lc = LeastConnections(random.Random(1))
    picks = Counter(lc.pick([busy, idle, idle2]).id for _ in range(300))
    assert picks["busy"] == 0 and min(picks["idle"], picks["idle2"]) > 100  # ties shared at random
    p2c = PowerOfTwoChoices(random.Random(1))
    picks = Counter(p2c.pick([busy, idle, idle2]).id for _ in range(300))
    assert picks["busy"] == 0  # busy loses every pair it is drawn into
    slow, fast = Fake("slow", latency_ewma_ms=50), Fake("fast", latency_ewma_ms=5)
    assert {p2c.pick([slow, fast]).id for _ in range(20)} == {"fast"}  # equal in flight: lower EWMA


def test_limiter_caps_queue_and_serves_realtime_before_bulk():
    async def scenario():
        limiter = Limiter(max_concurrency=2, max_queue=3, bulk_share=0.5)
        assert limiter.bulk_cap == 1
        await limiter.acquire(BULK)
        assert limiter.would_queue(BULK)  # bulk holds its whole share
        order: list[str] = []

        async def waiter(priority: str, name: str):
            await limiter.acquire(priority)
            order.append(name)

        await limiter.acquire(REALTIME)  # now full
        tasks = [
            asyncio.create_task(waiter(BULK, "bulk-1")),
            asyncio.create_task(waiter(REALTIME, "rt-1")),
            asyncio.create_task(waiter(REALTIME, "rt-2")),
        ]
        await asyncio.sleep(0)
        assert limiter.waiting == 3
        with pytest.raises(QueueFull):
            await limiter.acquire(REALTIME)
        limiter.release(REALTIME)  # one slot: real time first, though bulk queued first
        await asyncio.sleep(0)
        assert order == ["rt-1"]
        limiter.release(BULK)  # bulk's share is free again, but rt-2 still goes first
        await asyncio.sleep(0)
        assert order == ["rt-1", "rt-2"]
        limiter.release(REALTIME)
        await asyncio.sleep(0)
        assert order == ["rt-1", "rt-2", "bulk-1"] and limiter.bulk_in_flight == 1
        # A waiter that gives up leaves the queue and no slot behind.
        assert limiter.in_flight == 2  # rt-2 and bulk-1
        late = asyncio.create_task(limiter.acquire(REALTIME))
        await asyncio.sleep(0)
        late.cancel()
        await asyncio.gather(late, return_exceptions=True)
        assert limiter.waiting == 0 and limiter.in_flight == 2
        await asyncio.gather(*tasks)

    asyncio.run(scenario())


def test_retry_budget_allows_a_floor_plus_a_share_of_requests():
    clock = Clock()
    budget = RetryBudget(ratio=0.2, min_per_second=1, window=10, clock=clock)
    granted = sum(budget.try_retry() for _ in range(50))
    assert granted == 10  # the floor: 1 per second over 10 s
    for _ in range(100):
        budget.record_request()
    assert sum(budget.try_retry() for _ in range(50)) == 20  # + 20 % of 100 requests
    clock.now += 11  # the window has passed
    assert budget.try_retry()


def test_replica_guard_keeps_the_largest_agreeing_group():
    rng = np.random.default_rng(0)
    v = rng.standard_normal(8).astype(np.float32)
    v /= np.linalg.norm(v)
    near = v + 0.01 * rng.standard_normal(8).astype(np.float32)
    near /= np.linalg.norm(near)
    other = rng.standard_normal(8).astype(np.float32)
    other /= np.linalg.norm(other)
    verdict = replicas.judge(
        [("a", v), ("b", near), ("short", v[:6] / np.linalg.norm(v[:6])), ("loud", v * 3), ("odd", other)],
        expected_dimension=0,
        min_cosine=0.98,
    )
    assert verdict.dimension == 8
    assert verdict.problems["a"] == verdict.problems["b"] == ""
    assert "dimension 6 differs from 8" in verdict.problems["short"]
    assert "not normalised" in verdict.problems["loud"]
    assert "probe vector differs" in verdict.problems["odd"] and "'a'" in verdict.problems["odd"]
    # Two that disagree: the one listed first is the reference.
    tie = replicas.judge([("x", other), ("y", v)], 0, 0.98)
    assert tie.problems == {"x": "", "y": tie.problems["y"]} and tie.problems["y"]
    # A configured dimension rules out replicas of another size even when they are many.
    ruled = replicas.judge([("a", v), ("s1", v[:6]), ("s2", v[:6])], expected_dimension=8, min_cosine=0.98)
    assert ruled.problems["a"] == "" and "differs from the model's 8" in ruled.problems["s1"]
