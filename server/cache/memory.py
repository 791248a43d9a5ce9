"""In-process cache: LRU bounded by entry count and bytes, each entry with its own TTL."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence

from citadel.server.cache.base import Lookup
from citadel.server.tenancy import key_parts


class MemoryCache:
    name = "memory"

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key -> (expires, value)
        self._versions: dict[str, int] = {}
        self._generation = 0
        self._tenant_generations: dict[str, int] = {}
        self._bytes = 0
        self._max_entries = max_entries
        self._max_bytes = max_bytes

    def _prefix(self, tenant: str, scope: str) -> str:
        generations = f"{self._generation}:{self._tenant_generations.get(tenant, 0)}"
        return f"{generations}:{key_parts(tenant, scope)}:{self._versions.get(scope, 0)}:"

    async def lookup(self, scope: str, keys: Sequence[str], tenant: str = "") -> list[Lookup]:
        prefix = self._prefix(tenant, scope)
        now = time.monotonic()
        out = []
        for key in keys:
            full = prefix + key
            entry = self._entries.get(full)
            if entry is not None and entry[0] > now:
                self._entries.move_to_end(full)
                out.append(Lookup(full, entry[1]))
            else:
                if entry is not None:
                    self._drop(full)
                out.append(Lookup(full, None))
        return out

    async def store(self, entries: Sequence[tuple[str, bytes]], ttl_seconds: float) -> None:
        expires = time.monotonic() + ttl_seconds
        for key, value in entries:
            if len(value) > self._max_bytes:
                continue
            self._drop(key)
            self._entries[key] = (expires, value)
            self._bytes += len(value)
        while self._entries and (len(self._entries) > self._max_entries or self._bytes > self._max_bytes):
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry[1])

    async def bump(self, scope: str) -> None:
        self._versions[scope] = self._versions.get(scope, 0) + 1

    async def flush(self, tenant: str | None = None) -> None:
        if tenant is not None:
            # Unreachable now, evicted by LRU or TTL later: dropping them would need a scan.
            self._tenant_generations[tenant] = self._tenant_generations.get(tenant, 0) + 1
            return
        self._generation += 1
        self._entries.clear()
        self._bytes = 0

    async def usage(self) -> tuple[int, int]:
        return len(self._entries), self._bytes
