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
