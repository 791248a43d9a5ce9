"""The payload layout every store writes: the user's metadata, plus our own entry under the
reserved key (the original id, which a uuid5 point id cannot give back, and the write time).

Both engines share it, so a collection's points read the same whichever engine wrote them.
"""

from __future__ import annotations

from collections.abc import Iterable

from citadel.server.store.base import RESERVED_PAYLOAD_KEY, Point


def to_payload(point: Point, now: float) -> dict:
    return {
        **(point.metadata or {}),
        RESERVED_PAYLOAD_KEY: {"id": point.id, "created_at": point.created_at or now},
    }


def to_point(payload: dict | None, vector: Iterable[float] | None, with_metadata: bool) -> Point:
    payload = dict(payload or {})
    ours = payload.pop(RESERVED_PAYLOAD_KEY, {})
    return Point(
        id=ours.get("id", ""),
        vector=list(vector) if vector is not None else None,
        metadata=payload if with_metadata else None,
        created_at=float(ours.get("created_at", 0.0)),
    )
