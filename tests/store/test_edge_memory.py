"""The embedded engine's processes cap glibc's malloc arenas and map each vector file once,
unless the operator chose otherwise."""

from __future__ import annotations

import ctypes.util
import os
import platform
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import qdrant_edge as edge

from citadel.server.store.base import CollectionSpec, Point
from citadel.server.store.edge import EdgeStore
from citadel.server.store.edge_collection import HnswParams
from citadel.server.store.edge_memory import read_in_searched
from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.support.gateway_process import GatewayProcess

SINGLE_MAPPING = "QDRANT_NO_MULTI_MMAP"

CAP = "from citadel.server.store.edge_memory import cap_malloc_arenas; print(cap_malloc_arenas())"


def _run(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", CAP], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout.strip()


@pytest.mark.skipif(
    platform.system() != "Linux"
    or platform.libc_ver()[0] != "glibc"
    or ctypes.util.find_library("c") is None,
    reason="arenas are glibc's",
)
def test_arenas_are_capped_on_glibc_unless_malloc_arena_max_is_set():
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _run(env) == "True"
    assert _run({**env, "MALLOC_ARENA_MAX": "4"}) == "False"


VECTORS, DIM = 3_000, 64  # under the automatic build's threshold: one appendable segment


def _vector_file_mappings(pid: int, data_dir: Path) -> Counter[str]:
    """How many times the gateway maps each vector file under its data dir."""
    counts: Counter[str] = Counter()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        path = fields[5] if len(fields) == 6 else ""  # anonymous mappings have no path
        if path.startswith(str(data_dir)) and "/vector_storage" in path:
            counts[path] += 1
    return counts


def _gateway_after_an_exact_scan(tmp_path: Path, single_mapping: str | None) -> Counter[str]:
    proc = GatewayProcess(tmp_path / "data")
    proc.env.pop(SINGLE_MAPPING, None)  # whatever this test process has set for itself
    if single_mapping is not None:
        proc.env[SINGLE_MAPPING] = single_mapping
    proc.start()
    try:
        stub = proc.stub()
        collection = resources_pb2.Collection(
            name="maps", dimension=DIM, distance=resources_pb2.DISTANCE_COSINE
        )
        stub.CreateCollection(pb.CreateCollectionRequest(collection=collection), timeout=30)
        vectors = np.random.default_rng(3).standard_normal((VECTORS, DIM), dtype=np.float32)
        batch = [resources_pb2.Vector(id=f"p{i}", embedding=v.tolist()) for i, v in enumerate(vectors)]
        stub.UpsertVectors(pb.UpsertVectorsRequest(collection="maps", vectors=batch), timeout=60)
        # An exact scan reads every vector through the mapping scans use.
        request = pb.SearchVectorsRequest(
            collection="maps", query_vector=vectors[0].tolist(), limit=3, exact=True
        )
        assert stub.SearchVectors(request, timeout=30).results[0].id == "p0"
        return _vector_file_mappings(proc.proc.pid, proc.data_dir.resolve())
    finally:
        proc.kill()


def test_the_gateway_maps_each_vector_file_once(tmp_path):
    """So RSS counts each page of vectors once (the engine's default maps them twice)."""
    counts = _gateway_after_an_exact_scan(tmp_path, None)
    assert counts, "no vector file mapped: the probe looks in the wrong place"
    assert set(counts.values()) == {1}, counts


def test_an_operator_can_keep_the_engines_two_mappings(tmp_path):
    """QDRANT_NO_MULTI_MMAP set empty is the operator's choice: the engine maps its chunks twice."""
    counts = _gateway_after_an_exact_scan(tmp_path, "")
    assert 2 in set(counts.values()), counts


SEARCHED = ("/vector_storage/quantized.data", "/vector_index/")


def _searched_pages(under: Path) -> dict[str, tuple[int, int]]:
    """Each int8 copy or graph file this process maps under `under`: (resident kB, mapped kB)."""
    found: dict[str, tuple[int, int]] = {}
    path = ""
    size = 0
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if "-" in fields[0] and len(fields) >= 5 and ":" not in fields[0]:
            path = fields[5] if len(fields) == 6 else ""
        elif fields[0] == "Size:":
            size = int(fields[1])
        elif fields[0] == "Rss:" and path.startswith(str(under)) and any(s in path for s in SEARCHED):
            rss, mapped = found.get(path, (0, 0))
            found[path] = (rss + int(fields[1]), mapped + size)
    return found


@pytest.mark.asyncio
@pytest.mark.skipif(platform.system() != "Linux", reason="/proc/self/smaps and madvise are Linux's")
async def test_the_int8_copy_and_graph_load_cold_and_are_read_in_after_the_swap_and_at_start(tmp_path):
    """With vectors on disk (the default) the int8 copy and the graph are mapped cold, so a built
    generation loads beside the live one without them; the store reads them in once the live one
    is closed, and when it opens."""
    root = tmp_path / "edge"
    hnsw = HnswParams(m=16, ef_construct=64, ef=64, index_after=500)
    vectors = np.random.default_rng(5).standard_normal((20_000, DIM), dtype=np.float32)
    store = EdgeStore(root, hnsw, settle_seconds=3600)
    try:
        await store.create_collection(CollectionSpec("c", DIM, "cosine"))
        for start in range(0, len(vectors), 2_000):
            batch = range(start, start + 2_000)
            await store.upsert("c", [Point(id=f"v{i}", vector=vectors[i], metadata=None) for i in batch])
        await store.build_index("c")
        after_swap = _searched_pages(root)
    finally:
        await store.close()
    assert any("quantized.data" in p for p in after_swap) and any("/vector_index/" in p for p in after_swap)
    assert all(rss == mapped for rss, mapped in after_swap.values()), after_swap

    # The engine alone leaves the int8 copy unread; reading in maps all of it.
    shard_dir = next(p for p in (root / "c").iterdir() if p.name.startswith("shard-"))
    shard = edge.EdgeShard.load(str(shard_dir))
    try:
        cold = _searched_pages(shard_dir)
        int8 = next(p for p in cold if "quantized.data" in p)
        assert cold[int8][0] < cold[int8][1] // 2, cold
        assert read_in_searched(shard_dir) > 0
        assert all(rss == mapped for rss, mapped in _searched_pages(shard_dir).values())
    finally:
        shard.close()

    reopened = EdgeStore(root, hnsw, settle_seconds=3600)
    try:
        at_start = _searched_pages(root)
        assert at_start and all(rss == mapped for rss, mapped in at_start.values()), at_start
    finally:
        await reopened.close()
