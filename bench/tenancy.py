"""Issue 22 item 1: many tenants' collections, three ways side by side in one run: the
Qdrant-server store code partitioned (collections of one vector layout share a physical
collection) and dedicated (one physical collection each), both on qdrant-client's local mode (no
Qdrant server runs here), and the embedded engine (qdrant-edge), which keeps one shard per
collection under <data_dir>/edge.

1,000 collections across 100 tenants (--quick: 100 across 10) are created in all three, taking
turns (one in each, then the next), each given the same few points. Then, interleaved: listing
every collection, listing one tenant's, and a search in one collection. Reported: physical
collections made, create / list / search latency, bytes on disk, file descriptors the store holds
open (by path, in this process), and the embedded engine's engine threads. Then each store is
closed and reopened in a fresh process, the layouts taking turns: the time from opening it to
the first search answered (a restart), and what that process then holds (resident memory over
the same process before opening, descriptors, threads).

Local mode searches by brute force over the physical collection, filtering in Python, so its
partitioned search cost grows with the shared collection; a Qdrant server reads a partition
through its tenant index.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from bench.context import BenchContext
from bench.harness import Stats, row
from citadel.server.store.base import CollectionSpec, Point, SearchQuery
from citadel.server.store.edge import EdgeStore
from citadel.server.store.qdrant import QdrantStore
from citadel.server.store.qdrant_placement import PlacementPolicy

SECTION = "tenancy (qdrant-local, and the embedded engine)"
DIM = 16
POINTS_PER_COLLECTION = 5
# The Qdrant-server code's two placements on qdrant-local, and the embedded engine.
LAYOUTS = ("partitioned", "dedicated", "embedded")
EMBEDDED = "embedded (qdrant-edge, a shard per collection)"
LABELS = {"partitioned": "partitioned", "dedicated": "dedicated", "embedded": EMBEDDED}
# A restart is a fresh process each time: a few of them, the layouts taking turns.
RESTARTS_QUICK, RESTARTS_FULL = 2, 3
# The soft RLIMIT_NOFILE most Linux sessions and systemd services start with.
DEFAULT_FD_LIMIT = 1024


def run(ctx: BenchContext) -> list[dict]:
    return asyncio.run(_measure(ctx))


def _store_dir(root: Path, layout: str) -> Path:
    return root / ("edge" if layout == "embedded" else "qdrant")


def _open(layout: str, root: Path) -> QdrantStore | EdgeStore:
    if layout == "embedded":
        return EdgeStore(_store_dir(root, layout))
    return QdrantStore.local(_store_dir(root, layout), PlacementPolicy(placement=layout))


async def _measure(ctx: BenchContext) -> list[dict]:
    tenants, per_tenant = (10, 10) if ctx.quick else (100, 10)
    names = [f"t{t:03d}.c{c:02d}" for c in range(per_tenant) for t in range(tenants)]
    one_tenant = "t042" if tenants > 42 else "t001"
    probe_collection = names[len(names) // 2]
    roots = {layout: ctx.scratch(f"tenancy-{layout}") for layout in LAYOUTS}
    stores = {layout: _open(layout, roots[layout]) for layout in LAYOUTS}
    rng = random.Random(7)
    creates: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
    try:
        for name in names:
            points = [
                Point(id=f"p{i}", vector=[rng.uniform(-1, 1) for _ in range(DIM)], metadata={"i": i})
                for i in range(POINTS_PER_COLLECTION)
            ]
            for layout, store in stores.items():
                started = time.perf_counter()
                await store.create_collection(CollectionSpec(name=name, dimension=DIM, distance="cosine"))
                creates[layout].append((time.perf_counter() - started) * 1000)
                await store.upsert(name, points)
        probe = [rng.uniform(-1, 1) for _ in range(DIM)]
        calls = {
            "list all": lambda s: s.list_collections(),
            "list one tenant": lambda s: s.list_collections(one_tenant),
            "search one collection": lambda s: s.search(probe_collection, SearchQuery(vector=probe, limit=5)),
        }
        timed = {(what, layout): [] for what in calls for layout in LAYOUTS}
        rounds = 10 if ctx.quick else 30
        for _ in range(rounds):
            for what, call in calls.items():
                for layout, store in stores.items():
                    started = time.perf_counter()
                    await call(store)
                    timed[(what, layout)].append((time.perf_counter() - started) * 1000)
        physical = {
            layout: len((await store._client.get_collections()).collections)
            for layout, store in stores.items()
            if isinstance(store, QdrantStore)
        }
        physical["embedded"] = sum(
            1 for p in _store_dir(roots["embedded"], "embedded").iterdir() if p.is_dir()
        )
        open_fds = {layout: _fds_under(roots[layout]) for layout in LAYOUTS}
        engine_threads = _threads_named("edge-search")
    finally:
        for store in stores.values():
            await store.close()
    restarts = _restarts(roots, probe_collection, probe, RESTARTS_QUICK if ctx.quick else RESTARTS_FULL)

    rows = []
    for layout in LAYOUTS:
        tenth = max(1, len(names) // 10)
        first, last = creates[layout][:tenth], creates[layout][-tenth:]
        rows.append(
            row(
                SECTION,
                f"create {len(names)} collections, {tenants} tenants: {LABELS[layout]}",
                Stats(creates[layout], sum(creates[layout]) / 1000),
                physical_collections=physical[layout],
                disk_mb=round(_bytes(roots[layout]) / 1e6, 1),
                open_fds=open_fds[layout],
                first_tenth_p50_ms=round(Stats(first, 1).p50, 1),
                last_tenth_p50_ms=round(Stats(last, 1).p50, 1),
                **({"engine_threads": engine_threads} if layout == "embedded" else {}),
            )
        )
    create_p50 = {layout: Stats(creates[layout], 1).p50 for layout in LAYOUTS}
    rows += _ratios("create", create_p50)
    for what in calls:
        stats = {
            layout: Stats(timed[(what, layout)], sum(timed[(what, layout)]) / 1000) for layout in LAYOUTS
        }
        for layout in LAYOUTS:
            rows.append(row(SECTION, f"{what}: {LABELS[layout]}", stats[layout]))
        rows += _ratios(what, {layout: s.p50 for layout, s in stats.items()})
    for layout in LAYOUTS:
        runs = restarts[layout]
        ms = [r["open_to_first_search_ms"] for r in runs]
        rows.append(
            row(
                SECTION,
                f"restart with {len(names)} collections (open, first search answered): {LABELS[layout]}",
                Stats(ms, sum(ms) / 1000),
                rss_mb=_median_mb(runs, "rss_kb"),
                anon_mb=_median_mb(runs, "anon_kb"),
                open_fds=_median(runs, "fds"),
                threads=_median(runs, "threads"),
            )
        )
    rows += _ratios(
        "restart",
        {
            layout: Stats([r["open_to_first_search_ms"] for r in restarts[layout]], 1).p50
            for layout in LAYOUTS
        },
    )
    rows.append(_decision(len(names), open_fds["embedded"], engine_threads, restarts, create_p50, timed))
    return rows


def _ratios(what: str, p50: dict[str, float]) -> list[dict]:
    return [
        row(
            SECTION,
            f"{what} p50 ratio partitioned / dedicated",
            ratio=round(p50["partitioned"] / p50["dedicated"], 2),
        ),
        row(
            SECTION,
            f"{what} p50 ratio embedded / dedicated",
            ratio=round(p50["embedded"] / p50["dedicated"], 2),
        ),
    ]


def _decision(
    collections: int, fds: int, threads: int, restarts: dict, create_p50: dict, timed: dict
) -> dict:
    """The conclusion the figures support, stated beside them."""
    search = Stats(timed[("search one collection", "embedded")], 1).p50
    restart_s = Stats([r["open_to_first_search_ms"] for r in restarts["embedded"]], 1).p50 / 1000
    anon_mb = _median_mb(restarts["embedded"], "anon_kb")
    return row(
        SECTION,
        "decision: the embedded engine keeps a physical shard per collection",
        note=(
            f"its search reads one shard ({search:.2f} ms p50 at {collections} collections, against "
            f"{Stats(timed[('search one collection', 'partitioned')], 1).p50:.2f} partitioned on local mode) and its "
            f"create p50 is {create_p50['embedded']:.0f} ms; what grows per shard: {fds / collections:.0f} open "
            f"file each ({fds} here: past the common soft RLIMIT_NOFILE of {DEFAULT_FD_LIMIT}, which the gateway "
            f"raises to the hard limit at start), {threads / collections:.0f} engine search threads each "
            f"({threads}; store/edge_collection.py SEARCH_THREADS), {anon_mb} MB "
            f"anonymous memory and a {restart_s:.1f} s restart at {collections}"
        ),
    )


def _restarts(
    roots: dict[str, Path], collection: str, probe: list[float], rounds: int
) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {layout: [] for layout in LAYOUTS}
    for _ in range(rounds):
        for layout in LAYOUTS:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.tenancy",
                    layout,
                    str(roots[layout]),
                    collection,
                    json.dumps(probe),
                ],
                capture_output=True,
                text=True,
                timeout=600,
                check=True,
            )
            results[layout].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


async def _reopen(layout: str, root: Path, collection: str, probe: list[float]) -> dict:
    """In a fresh process: opens the store and answers one search; what it took and holds."""
    before = _status()
    started = time.perf_counter()
    store = _open(layout, root)
    await store.search(collection, SearchQuery(vector=probe, limit=5))
    elapsed_ms = (time.perf_counter() - started) * 1000
    after = _status()
    held = {
        "open_to_first_search_ms": elapsed_ms,
        "rss_kb": after["VmRSS"] - before["VmRSS"],
        "anon_kb": after["RssAnon"] - before["RssAnon"],
        "fds": _fds_under(root),
        "threads": len(os.listdir("/proc/self/task")),
    }
    await store.close()
    return held


def _status() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon"):
            fields[key] = int(value.split()[0])
    return fields


def _fds_under(root: Path) -> int:
    """This process's open descriptors on files under root (a store's, by where they point)."""
    count = 0
    prefix = str(root.resolve())
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(prefix):
                count += 1
        except OSError:  # closed since the listing
            continue
    return count


def _threads_named(prefix: str) -> int:
    count = 0
    for task in os.listdir("/proc/self/task"):
        try:
            if Path(f"/proc/self/task/{task}/comm").read_text().startswith(prefix):
                count += 1
        except OSError:  # exited since the listing
            continue
    return count


def _median(runs: list[dict], key: str) -> int:
    return int(Stats([float(r[key]) for r in runs], 1).p50)


def _median_mb(runs: list[dict], key: str) -> float:
    return round(Stats([float(r[key]) for r in runs], 1).p50 / 1024, 1)


def _bytes(root: Path) -> int:
    """Bytes allocated on disk (sparse files, such as the engine's preallocated WAL, count what they use)."""
    return sum(p.stat().st_blocks * 512 for p in root.rglob("*") if p.is_file())


if __name__ == "__main__":  # the restart child: python -m bench.tenancy <layout> <root> <collection> <probe>
    layout_arg, root_arg, collection_arg, probe_arg = sys.argv[1:5]
    print(json.dumps(asyncio.run(_reopen(layout_arg, Path(root_arg), collection_arg, json.loads(probe_arg)))))
