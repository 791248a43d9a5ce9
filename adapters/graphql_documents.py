"""The cache of parsed and validated GraphQL documents, bounded by memory as well as entries.

A document's parsed form takes far more memory than its text: tracemalloc measured 40-90
bytes of AST per character for real documents (introspection 57, a short query 88, an inline
384-d vector 41), so each entry is charged AST_BYTES_PER_CHAR per character of its text. A
document charged more than an eighth of the budget is not kept (one request must not flush
everyone's documents), and only valid documents are offered: an invalid one is rejected
again at the same cost, whereas caching it would let anyone fill the cache with garbage.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

AST_BYTES_PER_CHAR = 80
MAX_ENTRIES = 512
LARGEST_SHARE = 8  # a document charged over budget / LARGEST_SHARE is not kept

Key = tuple[str, str | None]  # (document text, operationName)
V = TypeVar("V")


def charge(key: Key) -> int:
    query, operation_name = key
    return (len(query) + len(operation_name or "")) * AST_BYTES_PER_CHAR


class DocumentCache(Generic[V]):
    """Least recently used first out, until both the byte budget and MAX_ENTRIES hold."""

    def __init__(self, max_bytes: int, max_entries: int = MAX_ENTRIES) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.bytes = 0
        self._entries: OrderedDict[Key, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key) -> V | None:
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        return found[0]

    def put(self, key: Key, value: V) -> bool:
        """Keeps the document unless it is too large to; False when it was not kept."""
        cost = charge(key)
        if cost > self.max_bytes // LARGEST_SHARE or key in self._entries:
            return False
        self._entries[key] = (value, cost)
        self.bytes += cost
        while self.bytes > self.max_bytes or len(self._entries) > self.max_entries:
            _, (_, freed) = self._entries.popitem(last=False)
            self.bytes -= freed
        return True
