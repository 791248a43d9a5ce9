"""Issues 8 and 20: time from `citadel serve` to ready on the embedded default (target ≤ 1.5 s
since issue 20, was 2 s; seed < 30 s), against the bare Python interpreter start in the same
run as the floor. `python -X importtime -m citadel.server.cli serve ...` shows where the
imports go."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from bench.context import BenchContext
from bench.harness import row
from tests.support.gateway_process import GatewayProcess

SECTION = "lifecycle"
TARGET_SECONDS = 1.5


def run(ctx: BenchContext) -> list[dict]:
    rounds = 3 if ctx.quick else 7
    ready: dict[int, list[float]] = {1: [], 2: []}
    floor = []
    for i in range(rounds):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        floor.append(time.perf_counter() - started)
        for workers in (1, 2):
            proc = GatewayProcess(
                ctx.scratch(f"start-{workers}-{i}") / "data",
                env={"CITADEL_ACCESS_LOG": "false"},
                args=["--insecure-no-auth", "--workers", str(workers)],
            )
            started = time.perf_counter()
            proc.start()
            ready[workers].append(time.perf_counter() - started)
            proc.stop()
    p50 = statistics.median(ready[1])
    p50_two = statistics.median(ready[2])
    return [
        row(SECTION, "python -c pass (interpreter floor)", start_s=statistics.median(floor), baseline="-"),
        row(
            SECTION,
            f"citadel serve to ready, embedded default (median of {rounds})",
            start_s=p50,
            baseline="floor",
            ratio=p50 / statistics.median(floor),
            note=f"target ≤ {TARGET_SECONDS} s: {'met' if p50 <= TARGET_SECONDS else 'MISSED'}",
        ),
        row(
            SECTION,
            f"citadel serve --workers 2 to ready (median of {rounds})",
            start_s=p50_two,
            baseline="1 worker",
            ratio=p50_two / p50,
            note="the supervisor opens the store, then both workers start at once on two cores",
        ),
    ]
