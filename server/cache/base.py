"""The cache backend interface.

Entries live under a scope (a collection's stored name, or "" for data that belongs to no
collection) whose version is part of every key. Writes bump the version, so entries of the
old version are never read again and simply expire: nothing ever scans or deletes keys.
A lookup returns, with each value, the exact key it read, and a miss is stored under that
key: a write landing between the two can then never make stale data current.
Every key also carries its tenant's generation, so one tenant's entries can be flushed alone
(the tenant's admin flush) without touching, or scanning for, anyone else's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Lookup:
    key: str  # the versioned key read (and to store a miss under)
    value: bytes | None


class CacheBackend(Protocol):
    name: str

    async def lookup(self, scope: str, keys: Sequence[str], tenant: str = "") -> list[Lookup]:
        """Current-version entries of `tenant` for `keys`, in order."""

    async def store(self, entries: Sequence[tuple[str, bytes]], ttl_seconds: float) -> None:
        """Stores values under keys returned by `lookup`."""

    async def bump(self, scope: str) -> None:
        """Makes every entry of `scope` unreachable."""

    async def flush(self, tenant: str | None = None) -> None:
        """Makes every entry of `tenant` unreachable, or every entry at all when None (the
        admin flush of a tenant's admin, of a tenant-less one)."""

    async def usage(self) -> tuple[int, int]:
        """(entries, bytes) as the backend counts them."""
