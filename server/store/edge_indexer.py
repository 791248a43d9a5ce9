"""Builds the embedded engine's HNSW graphs and payload indexes off the request path.

qdrant-edge-py 0.9 holds the GIL for the whole of every call: a ticking thread stops for the
full length of `optimize()` (about 80 s at 100k vectors). A worker thread would therefore
freeze the event loop just the same, so the build runs in a child process, on a copy:

1. under the collection's write lock: flush, copy the live shard dir to the next generation,
   and start journaling writes;
2. a child process (on idle CPU time only: SCHED_IDLE) loads the copy, creates the payload indexes that
   filters asked for, runs `optimize()` and closes it;
3. the built copy is loaded here, the journal replayed onto it (the tail under the write
   lock), flushed, and collection.json switched to it; the old generation is closed and
   deleted, and only then are the new one's int8 copy and graph read in (they load cold, so
   the two generations are never held whole at once: the 1M ingest's memory peak). The
   journal keeps upserts as point ids: their replay copies those points' current vectors and
   payload from the live shard (or deletes them from the copy if they are gone since), which
   gives each point its live state, as replaying the operations themselves would. A build
   during which more than `_DISCARD_FACTOR` times the points it indexed were written is
   discarded instead, and the next one starts from the live shard: the replay would cost more
   than the small graph saves, and would hold a second copy of every point written meanwhile
   (1M ingested while a 17k build ran: 982k replayed, gateway peak RSS 5.1 GiB).

Until step 3 searches run on the live shard, where points outside any graph are scanned
exactly: every write is searchable at once. After a crash the old generation stays live.

Builds start by themselves a few seconds after writes, once enough points are unindexed,
and run one at a time: they are CPU-bound and share the machine with the gateway. They are
incremental: the engine indexes only segments without a graph (the collection keeps
`HnswParams.segments` of them apart rather than merging indexed ones), so builds that start
while a large ingest goes on each take in what arrived since the last one, and search gets
fast progressively. Each build logs when it starts and ends (points, seconds); `state` and the
engine's indexed-vector count are what GetCollection and the metrics report.

The child never outlives the gateway, and a restarted gateway never races one that did:

- on Linux the kernel kills it when its parent dies (PR_SET_PDEATHSIG), and it checks after
  asking that the parent is still the one that started it; elsewhere it exits when the pipe
  from the parent reaches EOF (a thread that can act only when the engine releases the GIL, so
  not in the middle of `optimize()`);
- it holds an exclusive lock (flock) on `<collection>/.build.lock`, holding its pid, while it
  works; the store's start-up stops a holder left running before it deletes the shard dirs
  collection.json does not name (`stop_leftover_build`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import qdrant_edge as edge

from citadel.server.child_process import die_with_parent
from citadel.server.errors import unavailable
from citadel.server.store.base import IndexingState
from citadel.server.store.edge_collection import (
    INDEX_TYPES,
    EdgeCollection,
    HnswParams,
    next_shard_dir,
    write_meta,
)
from citadel.server.store.edge_memory import (
    cap_malloc_arenas,
    map_vectors_once,
    read_in_searched,
    release_freed_memory,
)

log = logging.getLogger("citadel.store.edge")

# Replay outside the write lock runs in steps of about this long (more than an upsert slice,
# so it gains on an ingest running meanwhile), each followed by a pause in which the loop runs
# freely: a request takes several turns of the loop, and yielding one turn per step made each
# search wait a step per turn (200k: p50 376 ms while 170k journaled writes were replayed).
_REPLAY_STEP_SECONDS = 0.03
_REPLAY_PAUSE_SECONDS = 0.005
# A build is discarded when more than this many times the points it copied were written
# during it (see the module docstring).
_DISCARD_FACTOR = 2
# How often a running build checks whether the writes made since it started outrun it.
_OUTRUN_CHECK_SECONDS = 0.5
# Journal entries left for the replay under the write lock (each at most one upsert slice).
_REPLAY_TAIL = 4
# After a failed build (disk full, say), automatic builds of that collection pause this long.
_RETRY_AFTER_SECONDS = 60.0
# Held (flock) by the build child of a collection while it works; holds the child's pid.
BUILD_LOCK = ".build.lock"
# How long start-up waits for a leftover build child to let go of its lock once killed.
_LEFTOVER_WAIT_SECONDS = 10.0


class BuildFailed(RuntimeError):
    """The index build child process failed; the collection keeps serving exact search."""


class Indexer:
    def __init__(self, hnsw: HnswParams, settle_seconds: float) -> None:
        self._hnsw = hnsw
        self._settle = settle_seconds
        self._watchers: dict[str, asyncio.Task] = {}
        self._written: set[str] = set()
        self._one_build = asyncio.Lock()
        self._failed_at: dict[str, float] = {}
        self._building: set[str] = set()
        # Collections whose last automatic build was outrun by the writes made during it: the
        # next waits until writes pause for `settle_seconds`, as each one started while they go
        # on at that rate is outrun too (1M ingested: builds of 25k and 155k discarded). Writes
        # that fast (thousands of points/s against a build's ~4,000/s on 2 cores) fill the
        # machine within minutes, so they are a bulk load, which ends.
        self._outrun: set[str] = set()

    def poke(self, c: EdgeCollection) -> None:
        """Called after writes: flushes and maybe builds once writes have settled a moment."""
        name = c.spec.name
        self._written.add(name)
        if name not in self._watchers:
            self._watchers[name] = asyncio.create_task(self._watch(c), name=f"edge-index-{name}")

    def needs_build(self, c: EdgeCollection) -> bool:
        # Exact count: the engine's points_count counts a point moving between segments
        # twice, which made a finished build look unfinished and start a second one.
        points = c.shard.count(edge.CountRequest(exact=True))
        if points - c.indexed_vectors() >= self._hnsw.index_after:
            return True
        return bool(c.wanted_indexes) and points >= self._hnsw.index_after

    def state(self, c: EdgeCollection) -> IndexingState:
        name = c.spec.name
        if name in self._building:
            return "building"
        if self._paused(name):
            return "failed"
        return "pending" if self.needs_build(c) else "indexed"

    def _paused(self, name: str) -> bool:
        """Whether automatic builds of `name` wait after a failed one."""
        return time.monotonic() - self._failed_at.get(name, -_RETRY_AFTER_SECONDS) < _RETRY_AFTER_SECONDS

    async def build(self, c: EdgeCollection) -> None:
        """Builds now if anything is left to index, after a build already running (builds run
        one at a time)."""
        async with self._one_build:
            for _ in range(3):  # a discarded build is followed by one from the live shard
                if c.closed or not self.needs_build(c) or await self._build(c):
                    return

    async def cancel(self, c: EdgeCollection) -> None:
        """Stops watching c and abandons its running build (the live shard is unaffected). What
        was kept about its builds goes too: a collection made again under the name starts afresh."""
        self._outrun.discard(c.spec.name)
        self._failed_at.pop(c.spec.name, None)
        task = self._watchers.pop(c.spec.name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close(self) -> None:
        for task in list(self._watchers.values()):
            task.cancel()
        await asyncio.gather(*self._watchers.values(), return_exceptions=True)
        self._watchers.clear()

    async def _watch(self, c: EdgeCollection) -> None:
        name = c.spec.name
        try:
            while name in self._written:
                self._written.discard(name)
                await asyncio.sleep(self._settle)
                if c.closed:
                    return
                c.shard.flush()  # bounds the WAL a restart replays; the WAL alone is durable
                if self._paused(name) or (name in self._outrun and name in self._written):
                    continue
                if self.needs_build(c):
                    async with self._one_build:
                        if self.needs_build(c):
                            await self._build(c)
        except Exception:
            self._failed_at[name] = time.monotonic()
            log.exception("index build for collection %r failed; the live shard is unchanged", name)
        finally:
            if self._watchers.get(name) is asyncio.current_task():
                del self._watchers[name]

    async def _build(self, c: EdgeCollection) -> bool:
        """One build; False when it was discarded (or the collection closed meanwhile)."""
        name = c.spec.name
        points = c.shard.count(edge.CountRequest(exact=True))
        unindexed = max(0, points - c.indexed_vectors())
        log.info(
            "index build of collection %r started: %d points, %d of them not in a graph",
            name,
            points,
            unindexed,
        )
        started = time.monotonic()
        self._building.add(name)
        try:
            swapped = await self._build_generation(c)
        finally:
            self._building.discard(name)
        if c.closed:
            return False
        if not swapped:
            self._outrun.add(name)
            return False
        self._failed_at.pop(name, None)
        self._outrun.discard(name)
        log.info(
            "index build of collection %r done in %.1f s: %d of %d points in graphs",
            name,
            time.monotonic() - started,
            min(points, c.indexed_vectors()),
            c.shard.count(edge.CountRequest(exact=True)),
        )
        return True

    async def _build_generation(self, c: EdgeCollection) -> bool:
        """Builds a copy of c and swaps it in; False when it did not (discarded, or c closed)."""
        new_dir = next_shard_dir(c.shard_dir)
        new_path = c.path / new_dir
        wanted = dict(c.wanted_indexes)
        built: edge.EdgeShard | None = None
        swapped = False
        try:
            async with c.write_lock:
                c.shard.flush()
                copied = c.shard.count(edge.CountRequest(exact=True))
                await asyncio.to_thread(shutil.copytree, c.shard_path, new_path)
                c.journal = []
            await _optimize_in_child(new_path, wanted, lambda: _written(c) > _DISCARD_FACTOR * copied)
            if c.closed:
                return False
            written = _written(c)
            if written > _DISCARD_FACTOR * copied:
                log.info(
                    "index build of collection %r discarded: %d points were written during it, more than "
                    "%d times the %d it indexed; the next build starts from the live shard",
                    c.spec.name,
                    written,
                    _DISCARD_FACTOR,
                    copied,
                )
                return False
            # The gateway holds both generations until the swap, its memory peak: give back the
            # heap the ingest freed first (bench scale: 200k peak 0.80 -> 0.775 GiB; 1M unchanged).
            release_freed_memory()
            built = edge.EdgeShard.load(str(new_path))
            done = await _replay_unlocked(c, built)
            async with c.write_lock:
                if c.closed:
                    return False
                for entry in c.journal[done:]:
                    _replay(c.shard, built, entry)
                built.flush()
                write_meta(c.path, c.spec, new_dir)
                old, old_path = c.shard, c.shard_path
                c.shard, c.shard_dir, c.journal = built, new_dir, None
                swapped = True
            for key in wanted:
                c.wanted_indexes.pop(key, None)
            old.close()
            release_freed_memory()  # the old generation's in-memory structures
            # Only now, with the old generation's memory given back: what searches walk.
            await asyncio.to_thread(read_in_searched, new_path)
            await asyncio.to_thread(shutil.rmtree, old_path, True)
            return True
        finally:
            if not swapped:
                c.journal = None
                if built is not None:
                    built.close()
                await asyncio.to_thread(shutil.rmtree, new_path, True)


def _written(c: EdgeCollection) -> int:
    """Points upserted since the running build copied the shard."""
    return sum(len(entry) for entry in c.journal or () if isinstance(entry, list))


async def _optimize_in_child(path: os.PathLike, wanted: Mapping[str, str], outrun: Callable[[], bool]) -> None:
    """Builds the copy at `path` in a child process. Once `outrun()` says the build will be
    discarded, the child is stopped then rather than left to finish: at 1M a build outrun during
    the ingest ran on for minutes after it, delaying the one that counts (825 s to fast search)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        str(path),
        json.dumps(dict(wanted)),
        str(os.getpid()),
        stdin=asyncio.subprocess.PIPE,  # never written: its EOF tells the child we are gone
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    communicate = asyncio.ensure_future(proc.communicate())
    try:
        while not communicate.done():
            await asyncio.wait({communicate}, timeout=_OUTRUN_CHECK_SECONDS)
            if not communicate.done() and outrun():
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await communicate
                return
        _, err = communicate.result()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        communicate.cancel()
        raise
    if proc.returncode != 0:
        raise BuildFailed(f"exit status {proc.returncode}: {err.decode(errors='replace')[-2000:]}")
    if err:
        log.warning("index build of %s: %s", path, err.decode(errors="replace")[-2000:])


async def _replay_unlocked(c: EdgeCollection, built: edge.EdgeShard) -> int:
    """Replays the journal onto the built shard while writes continue; returns how many."""
    done = 0
    assert c.journal is not None
    while len(c.journal) - done > _REPLAY_TAIL:
        step_end = time.monotonic() + _REPLAY_STEP_SECONDS
        while len(c.journal) - done > _REPLAY_TAIL and time.monotonic() < step_end:
            _replay(c.shard, built, c.journal[done])
            done += 1
        await asyncio.sleep(_REPLAY_PAUSE_SECONDS)
    return done


def _replay(live: edge.EdgeShard, built: edge.EdgeShard, entry: edge.UpdateOperation | list[str]) -> None:
    """Applies one journal entry to the built shard: an operation as it is, an upsert's ids by
    copying those points from the live shard, or deleting the ones it no longer has."""
    if not isinstance(entry, list):
        built.update(entry)
        return
    records = live.retrieve(entry, True, True)
    if records:
        built.update(
            edge.UpdateOperation.upsert_points([edge.Point(r.id, r.vector, r.payload) for r in records])
        )
    if len(records) < len(entry):
        present = {str(r.id) for r in records}
        built.update(edge.UpdateOperation.delete_points([i for i in entry if i not in present]))


def stop_leftover_build(collection: Path) -> None:
    """Called at start-up before the collection's unnamed shard dirs are deleted: if a build
    child of an earlier gateway still holds the collection's build lock, kill it and wait until
    the lock is free, so it cannot write into a directory this gateway removes and rebuilds."""
    lock = collection / BUILD_LOCK
    try:
        fd = os.open(lock, os.O_RDWR)
    except (FileNotFoundError, NotADirectoryError):
        return  # no build ever ran here
    try:
        if _try_lock(fd):
            return
        pid = _holder_pid(fd)
        log.warning(
            "collection %r: an index build left by an earlier gateway (pid %s) is still running; "
            "stopping it before its files are removed",
            collection.name,
            pid or "unknown",
        )
        if pid and _is_builder(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + _LEFTOVER_WAIT_SECONDS
        while not _try_lock(fd):
            if time.monotonic() > deadline:
                raise unavailable(
                    f"collection {collection.name!r}: an index build (pid {pid or 'unknown'}) holds {lock} "
                    f"and did not stop within {_LEFTOVER_WAIT_SECONDS:.0f} s"
                )
            time.sleep(0.05)
    finally:
        os.close(fd)  # releases the lock again: the next build child takes it


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder_pid(fd: int) -> int:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0)
    except ValueError:
        return 0


def _is_builder(pid: int) -> bool:
    """Whether pid is an index build child (the lock file may name a pid since reused). Where
    there is no /proc to ask, start-up only waits for the lock."""
    try:
        return __name__.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _die_with_parent(parent: int) -> None:
    """Child process: end when the gateway that started it ends, however it ends; where the
    kernel cannot be asked to, the parent's end of our stdin closing says so."""
    die_with_parent(parent)

    def exit_at_eof() -> None:
        while os.read(0, 4096):  # the parent never writes; EOF means it is gone
            continue
        os._exit(1)

    threading.Thread(target=exit_at_eof, name="parent-watch", daemon=True).start()


def _hold_build_lock(collection: Path, parent: int) -> int:
    fd = os.open(collection / BUILD_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    if os.getppid() != parent:  # the gateway ended while this waited: start-up may be cleaning up
        os._exit(1)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd  # held until this process exits


def _run_when_idle() -> None:
    """Child process: the build gets only CPU time nothing else wants, so searches and writes in
    the gateway always come first. SCHED_IDLE, set before the engine starts its threads, is
    inherited by all of them; nice 19 alone was not enough: the engine sets its HNSW threads to
    nice 9, which competed with the gateway's searches (1M: polls' p50 up to 1.6x an exact scan).
    Where there is no SCHED_IDLE, nice 19 is what is left. Both are per thread on Linux, so the
    threads imports started already (numpy's BLAS pool) are set one by one."""
    threads = [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]
    for tid in threads:
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            os.setpriority(os.PRIO_PROCESS, tid, 19)
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))


def main(argv: list[str]) -> int:
    """Child process: payload indexes and optimize() on a shard copy nobody else has open."""
    path, wanted, parent = argv[0], json.loads(argv[1]), int(argv[2])
    _run_when_idle()  # first: every thread started from here on inherits it
    _die_with_parent(parent)
    _hold_build_lock(Path(path).parent, parent)
    cap_malloc_arenas()
    map_vectors_once()  # inherited from the gateway too; set here for a child started by hand
    shard = edge.EdgeShard.load(path)
    for key, kind in wanted.items():
        try:
            shard.update(edge.UpdateOperation.create_field_index(key, INDEX_TYPES[kind]))
        except Exception as e:  # one key the engine refuses must not hold back the graphs
            print(f"payload index on {key!r} not created: {e}", file=sys.stderr)
    shard.optimize()
    shard.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
