"""The payload layout every store writes: the user's metadata, plus our own entry under the
reserved key (the original id, which a uuid5 point id cannot give back, the write time, and for
embedded text: the text, the model and when).

Both engines share it, so a collection's points read the same whichever engine wrote them.
"""

from __future__ import annotations

from collections.abc import Iterable

from citadel.server import page_tokens
from citadel.server.store.base import RESERVED_PAYLOAD_KEY, Page, Point


def to_payload(point: Point, now: float) -> dict:
    ours: dict = {"id": point.id, "created_at": point.created_at or now}
    if point.text is not None:
        ours["text"] = point.text
    if point.embedding_model:  # absent: the caller gave the vector (recorded by its absence)
        ours["model"] = point.embedding_model
        ours["embedded_at"] = point.embedded_at
    return {**(point.metadata or {}), RESERVED_PAYLOAD_KEY: ours}


def to_point(payload: dict | None, vector: Iterable[float] | None, with_metadata: bool) -> Point:
    payload = dict(payload or {})
    ours = payload.pop(RESERVED_PAYLOAD_KEY, {})
    if isinstance(vector, dict):  # the dense one, beside a keyword (BM25) vector
        vector = vector.get("")
    return Point(
        id=ours.get("id", ""),
        vector=list(vector) if vector is not None else None,
        metadata=payload if with_metadata else None,
        created_at=float(ours.get("created_at", 0.0)),
        text=ours.get("text"),
        embedding_model=ours.get("model", ""),
        embedded_at=float(ours.get("embedded_at", 0.0)),
    )


def to_page(records: Iterable, next_offset: object | None, with_metadata: bool) -> Page:
    """A scroll page from records with `.payload` / `.vector` and the engine's next offset."""
    return Page(
        points=[to_point(r.payload, r.vector, with_metadata) for r in records],
        next_token=page_tokens.encode(str(next_offset)) if next_offset is not None else "",
    )
