"""The index-build child process never outlives its gateway, and a restarted gateway never
deletes a shard dir that a leftover build child is still writing: real gateways, `kill -9`,
and /proc to see which processes are alive."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from citadel.server.store.edge_indexer import BUILD_LOCK
from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.jobs.conftest import wait_until
from tests.support.gateway_process import GatewayProcess

# Enough unindexed points for the gateway's automatic build (index_after is 5,000), which then
# runs for a few seconds: long enough to be caught running.
POINTS, DIM = 20_000, 32


def fill(proc: GatewayProcess, name: str) -> np.ndarray:
    stub = proc.stub()
    stub.CreateCollection(
        pb.CreateCollectionRequest(
            collection=resources_pb2.Collection(
                name=name, dimension=DIM, distance=resources_pb2.DISTANCE_COSINE
            )
        )
    )
    vectors = np.random.default_rng(7).standard_normal((POINTS, DIM), dtype=np.float32)
    for start in range(0, POINTS, 2_000):
        batch = [
            resources_pb2.Vector(id=f"p{start + i}", embedding=v.tolist())
            for i, v in enumerate(vectors[start : start + 2_000])
        ]
        stub.UpsertVectors(pb.UpsertVectorsRequest(collection=name, vectors=batch), timeout=120)
    return vectors


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper has stopped running)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):  # gone between the open and the read
        return False
    return state != "Z"


def build_children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"edge_indexer" in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def assert_intact(proc: GatewayProcess, name: str, vectors: np.ndarray) -> None:
    """Every point is there and searchable (exactly and through whatever index exists)."""
    stub = proc.stub()
    count = stub.CountVectors(pb.CountVectorsRequest(collection=name), timeout=30)
    assert count.count == POINTS
    for i in (0, POINTS // 2, POINTS - 1):
        hits = stub.SearchVectors(
            pb.SearchVectorsRequest(collection=name, query_vector=vectors[i].tolist(), limit=1), timeout=30
        )
        assert hits.results[0].id == f"p{i}"


def shard_dirs(data_dir: Path, name: str) -> list[str]:
    return sorted(p.name for p in (data_dir / "edge" / name).glob("shard-*"))


def test_the_build_child_dies_with_a_killed_gateway_and_the_restart_is_intact(tmp_path):
    proc = GatewayProcess(tmp_path / "data").start()
    try:
        vectors = fill(proc, "killed")
        child = wait_until(lambda: build_children(proc.proc.pid), 60, "a build child", interval=0.02)[0]
        wait_until(
            lambda: lock_held(proc.data_dir / "edge" / "killed"),
            30,
            "the build child to hold its lock",
            interval=0.02,
        )
        time.sleep(0.5)  # into optimize(), which holds the GIL: only the kernel can stop it there
        assert alive(child)
        proc.proc.kill()  # kill -9: no chance to stop the child itself
        proc.proc.wait(10)
        wait_until(
            lambda: not alive(child), 2.0, f"build child {child} to die with its gateway", interval=0.02
        )
        assert shard_dirs(proc.data_dir, "killed") == ["shard-1", "shard-2"]  # killed mid-build

        proc.start()  # same data dir: removes the half-built copy, then builds afresh
        assert_intact(proc, "killed", vectors)
    finally:
        proc.kill()


def test_every_thread_of_the_build_child_runs_on_idle_cpu_time_only(tmp_path):
    """Searches and writes in the gateway always come first: each thread of the build child,
    the engine's HNSW threads too (the engine renices those to 9 itself), is SCHED_IDLE."""
    proc = GatewayProcess(tmp_path / "data").start()
    try:
        fill(proc, "idle")
        child = wait_until(lambda: build_children(proc.proc.pid), 60, "a build child", interval=0.01)[0]
        policies: dict[str, tuple[str, int]] = {}  # thread id -> (name, policy last seen)
        while alive(child):
            for task in Path(f"/proc/{child}/task").glob("*"):
                try:
                    name = (task / "comm").read_text().strip()
                    policy = int((task / "stat").read_text().rsplit(")", 1)[1].split()[38])
                except (OSError, IndexError):
                    continue  # the thread or the child ended meanwhile
                policies[task.name] = (name, policy)
            time.sleep(0.005)
        assert any(name.startswith("hnsw-build") for name, _ in policies.values()), policies
        assert {policy for _, policy in policies.values()} == {os.SCHED_IDLE}, policies
    finally:
        proc.kill()


def test_start_up_stops_a_leftover_build_child_before_removing_its_shard_dir(tmp_path):
    """What a platform without PR_SET_PDEATHSIG would leave: a build child whose gateway is
    gone, still writing its copy of the shard when the next gateway starts."""
    proc = GatewayProcess(tmp_path / "data").start()
    try:
        vectors = fill(proc, "orphan")
        # Stopped cleanly before its own build starts (builds wait for writes to settle).
        assert proc.stop() == 0
    finally:
        proc.kill()
    collection = proc.data_dir / "edge" / "orphan"
    live = json.loads((collection / "collection.json").read_text())["shard"]
    copy = collection / f"shard-{int(live.removeprefix('shard-')) + 1}"
    shutil.copytree(collection / live, copy)
    # A build child as the gateway starts one, but whose parent (this test) stays alive.
    leftover = subprocess.Popen(
        [sys.executable, "-m", "citadel.server.store.edge_indexer", str(copy), "{}", str(os.getpid())],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(
            lambda: lock_held(collection), 30, "the leftover child to hold the build lock", interval=0.02
        )
        # Frozen mid-build, so it is surely still there, lock held, when the gateway starts.
        leftover.send_signal(signal.SIGSTOP)

        proc.start()
        assert leftover.wait(10) == -signal.SIGKILL  # stopped by start-up, not finished
        assert f"an index build left by an earlier gateway (pid {leftover.pid})" in proc.log()
        assert_intact(proc, "orphan", vectors)
    finally:
        proc.kill()
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait(10)
        leftover.stdin.close()
        leftover.stderr.close()


def lock_held(collection: Path) -> bool:
    path = collection / BUILD_LOCK
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
