"""Conversions between contract messages and the store's plain types."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import struct_pb2, timestamp_pb2

from citadel.server.servicers import collection_layout
from citadel.server.store.base import CollectionInfo, CollectionSpec, Point, ScoredPoint
from citadel.vector.v1 import resources_pb2, vector_service_pb2

DISTANCE_NAMES = {
    resources_pb2.DISTANCE_COSINE: "cosine",
    resources_pb2.DISTANCE_DOT: "dot",
    resources_pb2.DISTANCE_EUCLID: "euclid",
}
DISTANCE_ENUMS = {v: k for k, v in DISTANCE_NAMES.items()}
INDEXING_STATES = {
    "indexed": resources_pb2.INDEXING_STATE_INDEXED,
    "pending": resources_pb2.INDEXING_STATE_PENDING,
    "building": resources_pb2.INDEXING_STATE_BUILDING,
    "failed": resources_pb2.INDEXING_STATE_FAILED,
}
FIELD_TYPE_NAMES = {
    resources_pb2.FIELD_TYPE_KEYWORD: "keyword",
    resources_pb2.FIELD_TYPE_INTEGER: "integer",
    resources_pb2.FIELD_TYPE_FLOAT: "float",
    resources_pb2.FIELD_TYPE_BOOL: "bool",
    resources_pb2.FIELD_TYPE_TEXT: "text",
}
FIELD_TYPE_ENUMS = {v: k for k, v in FIELD_TYPE_NAMES.items()}
_MAX_SAFE_INT = 2**53


def struct_to_dict(s: struct_pb2.Struct) -> dict:
    """Struct → plain JSON dict. Whole numbers come back as ints: a Struct holds every number
    as a double, but users wrote `"year": 2020` and integer filters must match it."""
    fields = s.fields  # by key: a map field's items() is the generic, slower ItemsView
    return {k: _value(fields[k]) for k in fields}


def _value(v: struct_pb2.Value):
    kind = v.WhichOneof("kind")
    if kind == "number_value":
        n = v.number_value
        return int(n) if n.is_integer() and abs(n) < _MAX_SAFE_INT else n
    if kind == "string_value":
        return v.string_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "struct_value":
        return struct_to_dict(v.struct_value)
    if kind == "list_value":
        return [_value(x) for x in v.list_value.values]
    return None


_MICROS = 1_000_000
# The range Timestamp.FromNanoseconds accepts: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_TIMESTAMP_MIN_SECONDS = -62135596800
_TIMESTAMP_MAX_SECONDS = 253402300799


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    set_timestamp(ts, seconds)
    return ts


def set_timestamp(ts: timestamp_pb2.Timestamp, seconds: float) -> None:
    """Sets `ts` in place to `seconds` since the epoch, to the microsecond, with
    Timestamp.FromNanoseconds's range check but without its Python-level helpers or a copy (a
    search sets one per result). A float of seconds since 1970 holds no more than microseconds:
    finer digits would be rounding noise, and clients that keep datetimes (the SDK, the CLI's
    --json) would print another value than REST."""
    whole, micros = divmod(round(seconds * 1e6), _MICROS)
    nanos = micros * 1000
    if not _TIMESTAMP_MIN_SECONDS <= whole <= _TIMESTAMP_MAX_SECONDS:
        raise ValueError(
            f"Timestamp is not valid: Seconds {whole} must be in range "
            f"[{_TIMESTAMP_MIN_SECONDS}, {_TIMESTAMP_MAX_SECONDS}]."
        )
    ts.seconds = whole
    ts.nanos = nanos


def collection_message(
    info: CollectionInfo | CollectionSpec,
    name: str,
    fingerprint_state: int = resources_pb2.FINGERPRINT_STATE_UNSPECIFIED,
    fingerprint_detail: str = "",
    rollback_model: str = "",
) -> resources_pb2.Collection:
    """The collection as the caller knows it: `name` is its tenant-visible name."""
    spec = info.spec if isinstance(info, CollectionInfo) else info
    c = resources_pb2.Collection(
        name=name,
        dimension=spec.dimension,
        distance=DISTANCE_ENUMS[spec.distance],
        description=spec.description,
        indexed_fields=[
            resources_pb2.IndexedField(key=k, type=FIELD_TYPE_ENUMS[t]) for k, t in spec.indexed_fields
        ],
        created_at=timestamp(spec.created_at),
        embedding_model=spec.embedding_model,
        fingerprint_state=fingerprint_state,
        fingerprint_detail=fingerprint_detail,
        store_text=spec.store_text,
        rollback_model=rollback_model,
    )
    if spec.switched_at:
        set_timestamp(c.reembedded_at, spec.switched_at)
    if spec.layout.chosen():
        c.layout.CopyFrom(collection_layout.to_message(spec.layout))
    if isinstance(info, CollectionInfo):
        c.vector_count = info.vector_count
        if info.index_progress is not None:
            c.indexed_vector_count = info.index_progress.indexed_vectors
            c.indexing_state = INDEXING_STATES[info.index_progress.state]
    return c


def add_hits(results, hits: Sequence[ScoredPoint], with_text: bool) -> None:
    """Search hits onto a repeated ScoredVector field, in place (one message per hit, no copies)."""
    add = results.add
    for hit in hits:
        point = hit.point
        r = add(id=point.id, score=hit.score)
        set_timestamp(r.created_at, point.created_at)  # in place: no Timestamp per result
        if point.vector is not None:
            r.embedding.extend(point.vector)
        if point.metadata is not None:
            r.metadata.update(point.metadata)
        if point.text is not None or point.embedding_model:
            set_embedding_source(r, point, with_text)


def field_value(value: str | int | bool) -> vector_service_pb2.FieldValue:
    """A metadata value as a group's or facet's FieldValue."""
    if isinstance(value, bool):
        return vector_service_pb2.FieldValue(boolean=value)
    if isinstance(value, int):
        return vector_service_pb2.FieldValue(integer=value)
    return vector_service_pb2.FieldValue(keyword=str(value))


def vector_message(point: Point, collection: str, with_text: bool = True) -> resources_pb2.Vector:
    v = resources_pb2.Vector(id=point.id, collection=collection, created_at=timestamp(point.created_at))
    if point.vector is not None:
        v.embedding.extend(point.vector)
    if point.metadata is not None:
        v.metadata.update(point.metadata)
    set_embedding_source(v, point, with_text)
    return v


def set_embedding_source(message, point: Point, with_text: bool) -> None:
    """Text, model and embedding time onto a Vector or ScoredVector, in place."""
    if with_text and point.text is not None:
        message.text = point.text
    if point.embedding_model:
        message.embedding_model = point.embedding_model
        set_timestamp(message.embedded_at, point.embedded_at)
