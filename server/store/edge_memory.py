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
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

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
