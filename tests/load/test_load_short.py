"""The load test, short: 8 s of mixed traffic over all three protocols with zero errors and a
flat memory footprint. `make load` runs the 60 s version."""

from __future__ import annotations

from bench.load import prepare, run_load

# RSS may grow by this much over the run (allocator arenas, caches filling) and still be flat.
RSS_MARGIN = 0.15
RSS_SLACK_MB = 40


def test_short_mixed_load_has_no_errors_and_flat_memory(gateway):
    prepare(gateway, n=2000)
    report = run_load(gateway, seconds=8, concurrency=6)
    assert report["errors"] == 0, report["first_errors"]
    assert report["requests"] > 50
    assert {key.split()[0] for key in report["by_operation"]} == {"grpc", "rest", "graphql"}
    assert report["rss_end_mb"] <= report["rss_start_mb"] * (1 + RSS_MARGIN) + RSS_SLACK_MB, report
