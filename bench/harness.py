"""Measuring helpers: latency samples → p50/p99/QPS, and side-by-side interleaving.

The machine is shared and noisy, so comparisons interleave their samples (A, B, A, B, ...)
rather than running A then B: drift then hits both sides equally, and the ratio holds.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass
class Stats:
    samples_ms: list[float]
    wall_s: float

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]

    @property
    def qps(self) -> float:
        return len(self.samples_ms) / self.wall_s if self.wall_s else 0.0


def interleaved(fns: dict[str, Callable[[], object]], n: int, warmup: int = 20) -> dict[str, Stats]:
    """Runs every fn n times, taking turns, and returns each one's latency stats.

    Each round takes the turns in a fresh order (seeded, so runs repeat), so each fn follows
    each other about equally often: a call's cost can depend on the one before it. query_speed:
    whichever hybrid followed nearest took ~1-2 ms more at 100k, whatever its fusion. Rotating
    the order kept every fn's predecessor the same in all but one turn of a round, so the
    default hybrid, right after nearest, looked ~1 ms dearer than it is.

    QPS is one caller, one call in flight: n divided by the time spent in that fn.
    """
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    turns = list(fns.items())
    order = random.Random(len(turns))
    for _ in range(n):
        order.shuffle(turns)
        for name, fn in turns:
            start = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - start) * 1000)
    return {name: Stats(s, sum(s) / 1000) for name, s in samples.items()}


@dataclass
class PairedDifference:
    """What a adds over b, from samples taken back to back: the median of a[i] − b[i], with a
    bootstrap 95 % interval. Each pair shares its moment, so drift and the neighbours' load
    largely cancel out of the difference, which p50(a) − p50(b) cannot do."""

    median_ms: float
    low_ms: float
    high_ms: float

    @classmethod
    def of(cls, a: Stats, b: Stats, resamples: int = 2000, seed: int = 1) -> PairedDifference:
        diffs = np.asarray(a.samples_ms) - np.asarray(b.samples_ms)
        rng = np.random.default_rng(seed)
        medians = np.median(rng.choice(diffs, size=(resamples, len(diffs))), axis=1)
        low, high = np.percentile(medians, [2.5, 97.5])
        return cls(float(np.median(diffs)), float(low), float(high))


def row(section: str, name: str, stats: Stats | None = None, **extra) -> dict:
    """One line of the printed table."""
    out: dict = {"section": section, "name": name}
    if stats is not None:
        out.update(p50_ms=stats.p50, p99_ms=stats.p99, qps=stats.qps)
    out.update(extra)
    return out
