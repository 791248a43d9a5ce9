"""Issue 22 item 1: many tenants' collections on the Qdrant-server store code, partitioned (the
default: collections of one vector layout share a physical collection) against dedicated (one
physical collection each), side by side in one run on qdrant-client's local mode (no Qdrant
server runs here).

1,000 collections across 100 tenants (--quick: 100 across 10) are created in both layouts,
taking turns (one in each, then the next), each given a few points. Then, interleaved: listing
every collection, listing one tenant's, and a search in one collection. Reported: physical
collections made, create / list / search latency, bytes on disk. Local mode searches by brute
force over the physical collection, filtering in Python, so its partitioned search cost grows
with the shared collection; a Qdrant server reads a partition through its tenant index.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from bench.context import BenchContext
from bench.harness import Stats, row
from citadel.server.store.base import CollectionSpec, Point, SearchQuery
from citadel.server.store.qdrant import QdrantStore
from citadel.server.store.qdrant_placement import PlacementPolicy

SECTION = "tenancy (qdrant-local)"
DIM = 16
POINTS_PER_COLLECTION = 5
LAYOUTS = ("partitioned", "dedicated")


def run(ctx: BenchContext) -> list[dict]:
    return asyncio.run(_measure(ctx))


async def _measure(ctx: BenchContext) -> list[dict]:
    tenants, per_tenant = (10, 10) if ctx.quick else (100, 10)
    names = [f"t{t:03d}.c{c:02d}" for c in range(per_tenant) for t in range(tenants)]
    roots = {layout: ctx.scratch(f"tenancy-{layout}") for layout in LAYOUTS}
    stores = {
        layout: QdrantStore.local(roots[layout] / "qdrant", PlacementPolicy(placement=layout))
        for layout in LAYOUTS
    }
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
            "list one tenant": lambda s: s.list_collections("t042" if tenants > 42 else "t001"),
            "search one collection": lambda s: s.search(
                names[len(names) // 2], SearchQuery(vector=probe, limit=5)
            ),
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
        }
    finally:
        for store in stores.values():
            await store.close()

    rows = []
    for layout in LAYOUTS:
        rows.append(
            row(
                SECTION,
                f"create {len(names)} collections, {tenants} tenants: {layout}",
                Stats(creates[layout], sum(creates[layout]) / 1000),
                physical_collections=physical[layout],
                disk_mb=round(_bytes(roots[layout]) / 1e6, 1),
            )
        )
    ratio = Stats(creates["partitioned"], 1).p50 / Stats(creates["dedicated"], 1).p50
    rows.append(row(SECTION, "create p50 ratio partitioned / dedicated", ratio=round(ratio, 2)))
    for what in calls:
        stats = {
            layout: Stats(timed[(what, layout)], sum(timed[(what, layout)]) / 1000) for layout in LAYOUTS
        }
        for layout in LAYOUTS:
            rows.append(row(SECTION, f"{what}: {layout}", stats[layout]))
        rows.append(
            row(
                SECTION,
                f"{what} p50 ratio partitioned / dedicated",
                ratio=round(stats["partitioned"].p50 / stats["dedicated"].p50, 2),
            )
        )
    return rows


def _bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
