"""Translates the contract's Filter (Qdrant's own model) into qdrant-client models.

The servicer has validated the shape already (a oneof set, a non-empty key, a bound on every
range), so this is a one-to-one mapping; user ids become point ids the same way as on write
(`point_ids`: a partitioned collection's ids include its partition, store/qdrant_location.py).
"""

from __future__ import annotations

from collections.abc import Callable

from qdrant_client import models

from citadel.server.store.filter_ranges import range_bounds
from citadel.server.store.keywords import TEXT_FIELD
from citadel.server.store.point_ids import point_id
from citadel.vector.v1 import filter_pb2


def to_qdrant_filter(
    f: filter_pb2.Filter | None, point_ids: Callable[[str], str] = point_id
) -> models.Filter | None:
    if f is None:
        return None
    return models.Filter(
        must=[_condition(c, point_ids) for c in f.must] or None,
        should=[_condition(c, point_ids) for c in f.should] or None,
        must_not=[_condition(c, point_ids) for c in f.must_not] or None,
    )


def _condition(c: filter_pb2.Condition, point_ids: Callable[[str], str]) -> models.Condition:
    kind = c.WhichOneof("condition")
    if kind == "text_match":
        return models.FieldCondition(key=TEXT_FIELD, match=models.MatchText(text=c.text_match.query))
    if kind == "has_id":
        return models.HasIdCondition(has_id=[point_ids(i) for i in c.has_id.ids])
    if kind == "filter":
        return to_qdrant_filter(c.filter, point_ids)
    return _field(c.field)


def _field(fc: filter_pb2.FieldCondition) -> models.Condition:
    parts: list[models.FieldCondition] = []
    if fc.HasField("match"):
        parts.append(models.FieldCondition(key=fc.key, match=_match(fc.match)))
    if fc.HasField("range"):
        parts.append(models.FieldCondition(key=fc.key, range=models.Range(**range_bounds(fc.range))))
    # A match and a range on one key must both hold.
    return parts[0] if len(parts) == 1 else models.Filter(must=parts)


def _match(m: filter_pb2.Match) -> models.Match:
    kind = m.WhichOneof("value")
    if kind == "any_keyword":
        return models.MatchAny(any=list(m.any_keyword.values))
    if kind == "any_integer":
        return models.MatchAny(any=list(m.any_integer.values))
    if kind == "text":
        return models.MatchText(text=m.text)
    if kind == "phrase":
        return models.MatchPhrase(phrase=m.phrase)
    return models.MatchValue(value=getattr(m, kind))
