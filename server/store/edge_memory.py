"""How a process hosting the embedded engine asks glibc's malloc to keep its memory.

The engine's Rust code allocates through glibc malloc from many threads (the search pool, the
optimizer's), and glibc gives each thread that contends an arena of its own, up to 8 per core;
memory freed in one arena is not reused by another, so a write load leaves each holding its
own high-water mark. Two arenas: 100k clustered 384-d ingested through the gateway, indexed
and searched, anonymous memory 270 -> 214 MB at rest and 398 -> 339 MB at peak, no slower.

It also asks the engine to map each vector file once. By default qdrant-edge maps every chunk of
an appendable segment (and every indexed vector file) twice, once for random reads and writes
and once advised sequential for scans, so RSS counts each page of vectors twice: at 1M unindexed
384-d vectors, 2.86 GiB of RSS for 1.43 GiB of page cache. One mapping: 200k in process, RSS
after exact scans 1,129 -> 836 MiB (PSS unchanged: the page cache held each page once), exact
scan p50 17.1-17.7 -> 17.8-17.9 ms, ingest unchanged (bench scale: 1M in BENCHMARKS.md).

And it reads in, when the store chooses, the int8 copies and graphs the engine maps cold
(`read_in_searched`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from pathlib import Path

_M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h
ARENAS = 2


@functools.cache  # find_library runs `ldconfig -p` in a subprocess: once per process
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def release_freed_memory() -> None:
    """Hands the heap's free pages back to the system (glibc's malloc_trim), as after a shard
    closes: freed memory below the top of the heap otherwise stays resident."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)


# Read by the engine once per process, when it first maps a vector file (Qdrant's
# MULTI_MMAP_IS_SUPPORTED); a non-empty value gives one mapping per file.
_SINGLE_MAPPING = "QDRANT_NO_MULTI_MMAP"


def map_vectors_once() -> bool:
    """Asks the engine for one mapping per vector file, from the first shard this process opens
    on; False where QDRANT_NO_MULTI_MMAP is already set (an operator's choice, left as it is: an
    empty value keeps the engine's two mappings). Child processes inherit it."""
    if _SINGLE_MAPPING in os.environ:
        return False
    os.environ[_SINGLE_MAPPING] = "1"
    return True


def cap_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Caps glibc's malloc arenas for threads that start from now on; False where the C library
    is not glibc, or where MALLOC_ARENA_MAX is set (an operator's choice, left as it is)."""
    libc = None if "MALLOC_ARENA_MAX" in os.environ else _libc()
    mallopt = getattr(libc, "mallopt", None)  # glibc's; absent from musl and macOS
    return bool(mallopt is not None and mallopt(_M_ARENA_MAX, arenas))


# madvise(2) advice values (Linux, asm-generic/mman-common.h).
_MADV_NORMAL, _MADV_RANDOM, _MADV_POPULATE_READ = 0, 1, 22
# What a graph search walks, of the files the engine maps cold: each indexed segment's int8 copy
# and its graph.
_SEARCHED = ("/vector_storage/quantized.data", "/vector_index/")


@functools.cache
def _madvise():
    """libc's madvise with its C signature, or None where there is none."""
    madvise = getattr(_libc(), "madvise", None)
    if madvise is not None:
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return madvise


def read_in_searched(under: os.PathLike) -> int:
    """Maps in, from the page cache, the int8 copies and graphs of the shards under `under`, which
    the engine maps cold (`edge_collection._config`); returns the bytes read in.

    Cold, a shard loads without reading them (a built 1M generation: +0.40 GiB in 1.3 s, against
    +0.93 GiB with the int8 copy on the heap, the swap's peak), but each search would then fault
    its pages in one by one: the first 20 searches took 197 ms. The engine advises these
    mappings random, which turns off the kernel's fault-around, so reading them in page by page
    is slow too (1M: 5.5 s for the int8 copy; the engine's own read-in at load, `Memory.Cached`,
    took 7.9 s and made restarts 9-10 s). So the advice is lifted for the read-in and put back
    after: 0.3 s for the int8 copy and 0.13 s for the graph. Where the kernel cannot read in ahead
    (MADV_POPULATE_READ: Linux 5.14 and later) nothing is done and searches fault pages in.

    Runs in a thread (asyncio.to_thread): madvise releases the GIL while the kernel works."""
    madvise = _madvise()
    if madvise is None:
        return 0
    try:  # read whole first: the advice below splits and merges the mappings listed
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return 0
    prefix = os.path.join(os.path.realpath(under), "")  # /proc lists resolved paths
    done = 0
    for line in maps:
        fields = line.split(None, 5)
        if len(fields) < 6 or not fields[5].startswith(prefix) or not any(s in fields[5] for s in _SEARCHED):
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        madvise(start, end - start, _MADV_NORMAL)
        if madvise(start, end - start, _MADV_POPULATE_READ) == 0:
            done += end - start
        madvise(start, end - start, _MADV_RANDOM)
    return done
