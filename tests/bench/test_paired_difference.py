"""The core benchmark's verdict rests on PairedDifference: check it finds a known shift
where p50(a) − p50(b) does not, and that its interval is honest."""

from __future__ import annotations

import numpy as np

from bench.harness import PairedDifference, Stats


def stats(samples) -> Stats:
    return Stats(list(map(float, samples)), wall_s=1.0)


def test_finds_a_constant_shift() -> None:
    base = np.linspace(10.0, 20.0, 501)
    diff = PairedDifference.of(stats(base + 0.3), stats(base))
    assert abs(diff.median_ms - 0.3) < 1e-9
    assert diff.low_ms - 1e-9 <= 0.3 <= diff.high_ms + 1e-9


def test_pairs_beat_unpaired_medians_on_a_bimodal_engine() -> None:
    # Each search is fast or slow (the machine's moment), so each side's p50 sits near the gap
    # between the modes and moves with jitter. Pair i of a and b ran at the same moment, so
    # each difference is the true 0.2 ms plus jitter only.
    paired_errors, unpaired_errors = [], []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        moment = np.where(rng.random(1000) < 0.5, 12.0, 20.0)
        b = moment + rng.normal(0, 0.5, 1000)
        a = moment + 0.2 + rng.normal(0, 0.5, 1000)
        paired = PairedDifference.of(stats(a), stats(b), resamples=200)
        assert paired.low_ms <= paired.median_ms <= paired.high_ms
        paired_errors.append(abs(paired.median_ms - 0.2))
        unpaired_errors.append(abs(stats(a).p50 - stats(b).p50 - 0.2))
    assert max(paired_errors) < 0.1
    assert np.median(paired_errors) < np.median(unpaired_errors) / 2


def test_interval_widens_with_noise() -> None:
    rng = np.random.default_rng(5)
    base = rng.normal(12.0, 2.0, 400)
    quiet = PairedDifference.of(stats(base + 0.2 + rng.normal(0, 0.1, 400)), stats(base))
    noisy = PairedDifference.of(stats(base + 0.2 + rng.normal(0, 2.0, 400)), stats(base))
    assert (noisy.high_ms - noisy.low_ms) > 5 * (quiet.high_ms - quiet.low_ms)
