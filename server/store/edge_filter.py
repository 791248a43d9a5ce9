"""Translates the contract's Filter into qdrant-edge's filter types.

qdrant-edge has its own classes (not qdrant-client's models), with the same meaning, so this
mirrors `qdrant_filter.py` one to one. `filter_keys` names the payload keys a filter tests and
the index kind each would want, for payload indexes created on first use.
"""

from __future__ import annotations

import numpy as np
import qdrant_edge as edge

from citadel.server.errors import invalid
from citadel.server.store.base import FieldKind
from citadel.server.store.filter_ranges import range_bounds
from citadel.server.store.keywords import TEXT_FIELD
from citadel.server.store.point_ids import point_id
from citadel.vector.v1 import filter_pb2


def to_edge_filter(f: filter_pb2.Filter | None) -> edge.Filter | None:
    if f is None:
        return None
    return edge.Filter(
        must=[_condition(c) for c in f.must] or None,
        should=[_condition(c) for c in f.should] or None,
        must_not=[_condition(c) for c in f.must_not] or None,
    )


def _condition(c: filter_pb2.Condition):
    kind = c.WhichOneof("condition")
    if kind == "text_match":
        return edge.FieldCondition(key=TEXT_FIELD, match=edge.MatchText(c.text_match.query))
    if kind == "has_id":
        return edge.HasIdCondition({point_id(i) for i in c.has_id.ids})
    if kind == "filter":
        return to_edge_filter(c.filter)
    return _field(c.field)


def _field(fc: filter_pb2.FieldCondition):
    parts = []
    try:
        if fc.HasField("match"):
            parts.append(edge.FieldCondition(key=fc.key, match=_match(fc.match)))
        if fc.HasField("range"):
            parts.append(edge.FieldCondition(key=fc.key, range=edge.RangeFloat(**range_bounds(fc.range))))
    except ValueError as e:  # a path the validator let through but the engine refuses
        raise invalid("filter", f"key {fc.key[:100]!r}: {str(e)[:200]}") from None
    # A match and a range on one key must both hold.
    return parts[0] if len(parts) == 1 else edge.Filter(must=parts)


def _match(m: filter_pb2.Match):
    kind = m.WhichOneof("value")
    if kind == "any_keyword":
        return edge.MatchAny(list(m.any_keyword.values))
    if kind == "any_integer":
        return edge.MatchAny(list(m.any_integer.values))
    if kind == "text":
        return edge.MatchText(m.text)
    if kind == "phrase":
        return edge.MatchPhrase(m.phrase)
    if kind == "boolean":
        # qdrant-edge-py 0.9 reads a Python bool as the integer 0/1 (bool subclasses int), which
        # matches no boolean payload value; a numpy bool reaches the engine as a boolean.
        return edge.MatchValue(np.bool_(m.boolean))
    return edge.MatchValue(getattr(m, kind))


_MATCH_KINDS: dict[str, FieldKind] = {
    "keyword": "keyword",
    "any_keyword": "keyword",
    "integer": "integer",
    "any_integer": "integer",
    "boolean": "bool",
    "text": "text",
    "phrase": "text",
}


def filter_keys(f: filter_pb2.Filter | None) -> dict[str, FieldKind]:
    """Each payload key the filter tests, with the index kind that serves it; a key tested in
    ways that want different kinds is left out (no single index serves it)."""
    kinds: dict[str, set[FieldKind]] = {}
    _collect(f, kinds)
    return {key: next(iter(k)) for key, k in kinds.items() if len(k) == 1}


def _collect(f: filter_pb2.Filter | None, kinds: dict[str, set[FieldKind]]) -> None:
    if f is None:
        return
    for c in (*f.must, *f.should, *f.must_not):
        kind = c.WhichOneof("condition")
        if kind == "filter":
            _collect(c.filter, kinds)
        elif kind == "text_match":
            kinds.setdefault(TEXT_FIELD, set()).add("text")
        elif kind == "field":
            fc = c.field
            if fc.HasField("match"):
                kinds.setdefault(fc.key, set()).add(_MATCH_KINDS[fc.match.WhichOneof("value")])
            elif fc.HasField("range"):
                kinds.setdefault(fc.key, set()).add("float")
