"""Load-balancing strategies: each picks one of the backends eligible right now.

- `round_robin`: the model's backends in turn, skipping ineligible ones.
- `weighted`: smooth weighted round robin (as nginx does it): over any run of sum(weights)
  picks each backend gets exactly its weight, interleaved rather than in bursts.
- `least_connections`: fewest requests in flight; ties broken at random.
- `p2c` (default): power of two choices: two distinct backends at random, the one with fewer
  in flight (then lower latency EWMA). Near least-connections quality at O(1), without
  every balancer herding onto the same idle backend.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol


class Candidate(Protocol):
    id: str
    weight: int

    @property
    def in_flight(self) -> int: ...

    @property
    def latency_ewma_ms(self) -> float: ...


class Strategy(Protocol):
    def pick(self, eligible: Sequence[Candidate]) -> Candidate: ...


class RoundRobin:
    def __init__(self, order: Sequence[str]) -> None:
        self._order = list(order)
        self._next = 0

    def pick(self, eligible: Sequence[Candidate]) -> Candidate:
        by_id = {c.id: c for c in eligible}
        n = len(self._order)
        for step in range(n):
            slot = (self._next + step) % n
            chosen = by_id.get(self._order[slot])
            if chosen is not None:
                self._next = (slot + 1) % n
                return chosen
        return eligible[0]


class Weighted:
    def __init__(self) -> None:
        self._current: dict[str, int] = {}

    def pick(self, eligible: Sequence[Candidate]) -> Candidate:
        total = 0
        best = None
        for c in eligible:
            self._current[c.id] = self._current.get(c.id, 0) + c.weight
            total += c.weight
            if best is None or self._current[c.id] > self._current[best.id]:
                best = c
        self._current[best.id] -= total
        return best


class LeastConnections:
    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def pick(self, eligible: Sequence[Candidate]) -> Candidate:
        fewest = min(c.in_flight for c in eligible)
        return self._rng.choice([c for c in eligible if c.in_flight == fewest])


class PowerOfTwoChoices:
    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()

    def pick(self, eligible: Sequence[Candidate]) -> Candidate:
        if len(eligible) == 1:
            return eligible[0]
        a, b = self._rng.sample(list(eligible), 2)
        return min((a, b), key=lambda c: (c.in_flight, c.latency_ewma_ms))


def make_strategy(name: str, order: Sequence[str]) -> Strategy:
    if name == "round_robin":
        return RoundRobin(order)
    if name == "weighted":
        return Weighted()
    if name == "least_connections":
        return LeastConnections()
    if name == "p2c":
        return PowerOfTwoChoices()
    raise ValueError(f"strategy: {name!r} is not known")
