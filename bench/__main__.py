"""`make bench`: every section's figures, measured side by side in one run, as one table,
printed and written to BENCHMARKS.md with the machine described.

Sections are modules with `run(ctx) -> list[dict]`; pass section names to run only those
(`python -m bench core protocols`, which does not rewrite BENCHMARKS.md), `--quick` for a smoke
run with fewer samples.
"""

from __future__ import annotations

import os

# One BLAS thread in the bench process and in every gateway it starts (they inherit the
# environment). On two shared cores OpenBLAS's helper threads spin while idle and take the
# CPU the other side of a side-by-side comparison needs: measured, qdrant-local's 10k search
# went from 13 ms to 24 ms and Health/Check from 1.4 to 2.7 ms. Set before numpy loads; here,
# not in bench/__init__, so that tests importing bench helpers leave their environment alone.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

from bench.context import BenchContext

SECTIONS = [
    "core",
    "protocols",
    "rpc_web",
    "server_cpu",
    "throughput",
    "interceptors",
    "models",
    "jobs",
    "reembed",
    "lifecycle",
    "workers",
    "redis_cluster",
    "loadmix",
    "engines",
    "query_quality",
    "query_speed",
    "security",
    "tenancy",
]
REPORT = Path("BENCHMARKS.md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("sections", nargs="*", default=SECTIONS)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    ctx = BenchContext(quick=args.quick)
    rows: list[dict] = []
    try:
        for name in args.sections:
            try:
                module = importlib.import_module(f"bench.{name}")
            except ModuleNotFoundError as e:
                if e.name != f"bench.{name}":
                    raise
                print(f"(section {name!r} not present, skipped)", file=sys.stderr)
                continue
            started = time.monotonic()
            print(f"running {name} ...", file=sys.stderr, flush=True)
            rows += module.run(ctx)
            print(f"  {name} took {time.monotonic() - started:.0f} s", file=sys.stderr)
    finally:
        ctx.close()
    table = render(rows)
    print(table)
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2, default=str))
    if args.sections == SECTIONS and not args.quick:
        REPORT.write_text(report(table, machine()) + kept_part(REPORT))
        print(f"wrote {REPORT}", file=sys.stderr)
    return 0


def machine() -> dict:
    info = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
        info["cpu"] = model
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text().split()[1])
        info["memory_gib"] = round(total_kb / 1024 / 1024, 1)
    info["load_average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return info


# Everything after this line in BENCHMARKS.md is kept as it is by a full run: the results of
# opt-in sections (minutes long, run on their own), written there by whoever ran them.
KEPT = "<!-- kept by make bench: opt-in sections, run on their own -->"


def kept_part(path: Path) -> str:
    text = path.read_text() if path.exists() else ""
    return text[text.index(KEPT) :] if KEPT in text else ""


def report(table: str, machine_info: dict) -> str:
    described = ", ".join(f"{k}: {v}" for k, v in machine_info.items())
    return (
        "# Citadel benchmarks\n\n"
        f"Written by `make bench` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: {described}.\n\n"
        "Every figure is measured side by side with its baseline in the same run (samples interleaved where\n"
        "two things are compared), and reported as medians and ratios: the machine is shared and noisy,\n"
        "so absolute times move between runs while ratios hold. Latencies are one caller, one call in flight.\n"
        f"{table}\n"
    )


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    return "" if value is None else str(value)


def render(rows: list[dict]) -> str:
    columns = ["name", "p50_ms", "p99_ms", "qps", "baseline", "ratio"]
    lines = []
    section = None
    for r in rows:
        if r["section"] != section:
            section = r["section"]
            lines += [
                "",
                f"## {section}",
                "| " + " | ".join(columns + ["notes"]) + " |",
                "|" + "---|" * (len(columns) + 1),
            ]
        notes = ", ".join(f"{k}={_fmt(v)}" for k, v in r.items() if k not in columns and k != "section")
        lines.append("| " + " | ".join(_fmt(r.get(c)) for c in columns) + f" | {notes} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
