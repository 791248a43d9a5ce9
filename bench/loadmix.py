"""Issue 9: a 20 s slice of the mixed load test (search/upsert/embed over gRPC, REST and
GraphQL at concurrency 6), so BENCHMARKS.md carries throughput, errors and memory too."""

from __future__ import annotations

from bench.context import BenchContext
from bench.harness import row
from bench.load import prepare, run_load

SECTION = "mixed load (70 % search, 20 % upsert, 10 % embed; gRPC, REST, GraphQL)"


def run(ctx: BenchContext) -> list[dict]:
    with ctx.gateway("load", env={"CITADEL_ACCESS_LOG": "false"}) as gw:
        prepare(gw, n=2000 if ctx.quick else 5000)
        report = run_load(gw, seconds=5 if ctx.quick else 20, concurrency=6)
    return [
        row(
            SECTION,
            f"{report['requests']} requests in {report['seconds']} s",
            p50_ms=report["p50_ms"],
            p99_ms=report["p99_ms"],
            qps=report["throughput_rps"],
            errors=report["errors"],
            rss_mb=f"{report['rss_start_mb']} → {report['rss_end_mb']}",
        )
    ]
