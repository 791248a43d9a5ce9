"""Conversions on the search hot path give exactly what protobuf's own helpers give (timestamps
to the microsecond: what a float of epoch seconds holds, and what datetimes keep)."""

from __future__ import annotations

import random

import pytest
from google.protobuf import timestamp_pb2

from citadel.server.servicers.convert import set_timestamp, timestamp


def _reference(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromMicroseconds(round(seconds * 1e6))
    return ts


def test_timestamp_matches_from_microseconds():
    rng = random.Random(5)
    edge = [0.0, 1e-9, -1e-9, 0.5, -0.5, -1.25, 1763937600.123456, -62135596800.0, 253402300799.999]
    samples = (
        edge
        + [rng.uniform(-6.2e10, 2.5e11) for _ in range(2000)]
        + [rng.uniform(0, 2e9) for _ in range(2000)]
    )
    for seconds in samples:
        assert timestamp(seconds) == _reference(seconds), seconds
        in_place = timestamp_pb2.Timestamp()
        set_timestamp(in_place, seconds)
        assert in_place == _reference(seconds), seconds


@pytest.mark.parametrize("seconds", [253402300800.0, -62135596801.0, 1e20])
def test_timestamp_out_of_range_is_refused_as_before(seconds):
    with pytest.raises(ValueError):
        _reference(seconds)
    with pytest.raises(ValueError, match="Timestamp is not valid"):
        timestamp(seconds)
