"""The bounds of a filter's numeric range, shared by the edge and Qdrant filter translators
(here, not in qdrant_filter, so that the embedded engine starts without importing qdrant-client)."""

from __future__ import annotations

from citadel.vector.v1 import filter_pb2


def range_bounds(r: filter_pb2.Range) -> dict[str, float | None]:
    """The bounds that are set (proto3 `optional`), unset ones as None."""
    return {bound: getattr(r, bound) if r.HasField(bound) else None for bound in ("lt", "gt", "lte", "gte")}
