"""`make bench`: every section's figures, measured side by side in one run, as one table.

Sections are modules with `run(ctx) -> list[dict]`; pass section names to run only those
(`python -m bench core protocols`), `--quick` for a smoke run with fewer samples.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

from bench.context import BenchContext

SECTIONS = ["core", "protocols", "interceptors", "models", "jobs", "lifecycle", "engines"]


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
    print(render(rows))
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2, default=str))
    return 0


def machine() -> dict:
    import os

    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


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
