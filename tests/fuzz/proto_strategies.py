"""Hypothesis strategies for protobuf messages, derived from their descriptors.

Every field type is covered: integers of each width at and inside their bounds, floats with
NaN and the infinities, empty, odd and huge strings, random bytes, enums with values the
proto does not declare, nested and recursive messages, oneofs, repeated fields, maps, and the
well-known types (Struct/Value/ListValue, Timestamp, Duration, Empty). Fields the gateway
looks up by name (`collection`, `model`, `id`, `embedding`, ...) draw from the seeded values
part of the time, so a generated request reaches past `not found` into the servicer.
"""

from __future__ import annotations

from collections.abc import Callable

from google.api import field_behavior_pb2
from google.protobuf import descriptor, message, message_factory, struct_pb2
from hypothesis import strategies as st

from citadel.vector.v1 import filter_pb2
from tests.fuzz import seed

FD = descriptor.FieldDescriptor
MAX_DEPTH = 4  # nesting of recursive messages (Filter → Condition → Filter ...)
HUGE = 100_000

_INT_BOUNDS = {
    FD.TYPE_INT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FD.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FD.TYPE_UINT32: (0, 2**32 - 1),
    FD.TYPE_FIXED32: (0, 2**32 - 1),
    FD.TYPE_INT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FD.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FD.TYPE_UINT64: (0, 2**64 - 1),
    FD.TYPE_FIXED64: (0, 2**64 - 1),
}

# Valid UTF-8 only (surrogates cannot be encoded); bad UTF-8 is sent as raw bytes elsewhere.
_chars = st.characters(exclude_categories=("Cs",))
TEXT = st.one_of(
    st.text(_chars, max_size=24),
    st.sampled_from(["", " ", "\x00", "é", "🦀", "../..", "_citadel", "a" * 257, "%s%n{}"]),
    st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "🦀"]), st.integers(1_000, HUGE)),
)
BYTES = st.one_of(st.binary(max_size=64), st.binary(min_size=1_000, max_size=4_096))


def integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    edges = sorted({lo, hi, 0, 1, lo + 1, hi - 1, max(lo, -1), min(hi, 2**31), min(hi, 65537)})
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi), st.integers(max(lo, -5), min(hi, 1_100)))


FLOAT32 = st.floats(width=32)  # NaN and ±inf included
FLOAT64 = st.floats()
FINITE32 = st.floats(width=32, min_value=-10.0, max_value=10.0)


def _vectors() -> st.SearchStrategy[list[float]]:
    """Embeddings: random lengths and values, or the seeded collections' dimensions."""
    return st.one_of(
        st.lists(FLOAT32, max_size=6),
        st.lists(FINITE32, min_size=2, max_size=2),
        st.lists(FLOAT32, min_size=2, max_size=2),
        st.lists(FINITE32, min_size=seed.TEXT_DIMENSION, max_size=seed.TEXT_DIMENSION),
        st.integers(0, 70_000).map(lambda n: [0.5] * n),
    )


# Values the gateway resolves or checks, by (field name, type): drawn most of the time
# instead of arbitrary ones, so that requests get past the first check.
_S, _I, _U = FD.TYPE_STRING, FD.TYPE_INT64, FD.TYPE_UINT32
_TEXTS = st.sampled_from(["hello world", "a", "  ", "query about vectors"])
_HINTS: dict[tuple[str, int], st.SearchStrategy] = {
    ("collection", _S): st.sampled_from([*seed.NAMES, "other-collection"]),
    ("name", _S): st.sampled_from([*seed.NAMES, "other-collection"]),
    ("model", _S): st.sampled_from(["", seed.MODEL, "phi3", "absent-model"]),
    ("id", _S): st.deferred(lambda: st.sampled_from([*seed.VECTOR_IDS, *seed.JOB_IDS])),
    ("ids", _S): st.deferred(lambda: st.sampled_from([*seed.VECTOR_IDS, *seed.JOB_IDS])),
    ("key", _S): st.sampled_from(["tag", "n", "score", "flag", "nested.k", "missing"]),
    ("keyword", _S): st.sampled_from(["t0", "t1", "t2"]),
    ("values", _S): st.sampled_from(["t0", "t1", "t2"]),
    ("integer", _I): st.integers(-2, 9),
    ("values", _I): st.integers(-2, 9),
    ("text", _S): _TEXTS,
    ("texts", _S): _TEXTS,
    ("query_text", _S): _TEXTS,
    ("dimension", _U): st.sampled_from([1, 2, 3, seed.TEXT_DIMENSION, 65536]),
    ("limit", _U): st.integers(0, 20),
    ("page_size", FD.TYPE_INT32): st.integers(0, 20),
    ("page_size", _U): st.integers(0, 20),
}
_FLOAT_LISTS = {"embedding", "query_vector"}
_LIKELY = st.sampled_from([True] * 7 + [False])
_EVEN = st.booleans()


def mostly(usual: st.SearchStrategy, other: st.SearchStrategy) -> st.SearchStrategy:
    """`usual` 7 times in 8, `other` otherwise."""
    return st.sampled_from([True] * 7 + [False]).flatmap(lambda pick: usual if pick else other)


def _json_values() -> st.SearchStrategy:
    leaves = st.one_of(st.none(), st.booleans(), FLOAT64, integers(-(2**53), 2**53), TEXT)
    keys = st.one_of(st.text(_chars, max_size=8), st.sampled_from(["tag", "n", "_citadel_x", ""]))
    return st.recursive(
        leaves,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
        max_leaves=12,
    )


def _struct() -> st.SearchStrategy[struct_pb2.Struct]:
    keys = st.one_of(st.text(_chars, max_size=8), st.sampled_from(["tag", "n", "_citadel", "_citadel_id"]))

    def build(d: dict) -> struct_pb2.Struct:
        s = struct_pb2.Struct()
        s.update(d)
        return s

    return st.dictionaries(keys, _json_values(), max_size=5).map(build)


def _value() -> st.SearchStrategy[struct_pb2.Value]:
    def build(v) -> struct_pb2.Value:
        out = struct_pb2.Value()
        out.MergeFrom(_as_value(v))
        return out

    return _json_values().map(build)


def _as_value(v) -> struct_pb2.Value:
    holder = struct_pb2.Struct()
    holder.update({"v": v})
    return holder.fields["v"]


def _list_value() -> st.SearchStrategy[struct_pb2.ListValue]:
    def build(items: list) -> struct_pb2.ListValue:
        out = struct_pb2.ListValue()
        out.extend(items)
        return out

    return st.lists(_json_values(), max_size=4).map(build)


def _seconds_nanos(cls: type[message.Message]) -> st.SearchStrategy[message.Message]:
    # Out-of-range seconds and nanos too: the wire allows them, the server must not choke.
    return st.builds(
        lambda s, n: cls(seconds=s, nanos=n), integers(-(2**63), 2**63 - 1), integers(-(2**31), 2**31 - 1)
    )


def _well_known(full_name: str, cls: type[message.Message]) -> st.SearchStrategy | None:
    return {
        # Past protobuf's recursion limit (100) sometimes: the server must refuse, not crash.
        "google.protobuf.Struct": lambda: st.one_of(_struct(), st.integers(0, 120).map(deep_struct)),
        "google.protobuf.Value": _value,
        "google.protobuf.ListValue": _list_value,
        "google.protobuf.Timestamp": lambda: _seconds_nanos(cls),
        "google.protobuf.Duration": lambda: _seconds_nanos(cls),
        "google.protobuf.Empty": lambda: st.just(cls()),
    }.get(full_name, lambda: None)()


def _enum(field: descriptor.FieldDescriptor) -> st.SearchStrategy[int]:
    declared = [v.number for v in field.enum_type.values]
    meaningful = [n for n in declared if n != 0] or declared  # past `_UNSPECIFIED is rejected`
    # ... and unknown values too.
    return mostly(st.sampled_from(meaningful), st.one_of(st.just(0), integers(-(2**31), 2**31 - 1)))


def _scalar(field: descriptor.FieldDescriptor) -> st.SearchStrategy:
    t = field.type
    hint = _HINTS.get((field.name, t))
    if hint is not None:
        return mostly(hint, _scalar_of_type(field))
    return _scalar_of_type(field)


def _scalar_of_type(field: descriptor.FieldDescriptor) -> st.SearchStrategy:
    t = field.type
    if t in _INT_BOUNDS:
        return integers(*_INT_BOUNDS[t])
    if t == FD.TYPE_FLOAT:
        return st.one_of(FLOAT32, FINITE32)
    if t == FD.TYPE_DOUBLE:
        return FLOAT64
    if t == FD.TYPE_BOOL:
        return st.booleans()
    if t == FD.TYPE_STRING:
        return TEXT
    if t == FD.TYPE_BYTES:
        return BYTES
    if t == FD.TYPE_ENUM:
        return _enum(field)
    raise TypeError(f"{field.full_name}: unexpected field type {t}")


def _required(field: descriptor.FieldDescriptor) -> bool:
    return field_behavior_pb2.REQUIRED in field.GetOptions().Extensions[field_behavior_pb2.field_behavior]


def _is_map(field: descriptor.FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _field_values(field: descriptor.FieldDescriptor, depth: int) -> st.SearchStrategy:
    """What one field is set to: a value, a list (repeated) or a dict (map)."""
    if _is_map(field):
        entry = field.message_type
        key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
        value_strategy = messages(value.message_type, depth + 1) if value.message_type else _scalar(value)
        return st.dictionaries(_scalar(key), value_strategy, max_size=3)
    one = messages(field.message_type, depth + 1) if field.message_type else _scalar(field)
    if field.is_repeated:
        if field.type == FD.TYPE_FLOAT and field.name in _FLOAT_LISTS:
            return _vectors()
        return st.lists(one, max_size=4)
    return one


def _set(msg: message.Message, field: descriptor.FieldDescriptor, value) -> None:
    target = getattr(msg, field.name)
    if _is_map(field):
        for k, v in value.items():
            if isinstance(v, message.Message):
                target[k].CopyFrom(v)
            else:
                target[k] = v
    elif field.is_repeated:
        if field.message_type is not None:
            for v in value:
                target.add().CopyFrom(v)
        else:
            target.extend(value)
    elif field.message_type is not None:
        target.CopyFrom(value)
    else:
        setattr(msg, field.name, value)


_cache: dict[tuple[str, int], st.SearchStrategy] = {}


def messages(desc: descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy[message.Message]:
    """Messages of type `desc`: any subset of its fields set, in any order (a later member of
    a oneof replaces an earlier one, as on the wire)."""
    key = (desc.full_name, min(depth, MAX_DEPTH + 1))
    if key not in _cache:
        _cache[key] = _build(desc, depth)
    return _cache[key]


def _build(desc: descriptor.Descriptor, depth: int) -> st.SearchStrategy[message.Message]:
    cls = message_factory.GetMessageClass(desc)
    known = _well_known(desc.full_name, cls)
    if known is not None:
        return known
    if desc.full_name == filter_pb2.Filter.DESCRIPTOR.full_name and depth <= 2:
        # Far past MAX_FILTER_DEPTH (8) and protobuf's recursion limit, next to random ones.
        return st.one_of(_fields_of(desc, cls, depth), st.integers(0, 120).map(nested_filter))
    return _fields_of(desc, cls, depth)


def _fields_of(desc: descriptor.Descriptor, cls, depth: int) -> st.SearchStrategy[message.Message]:
    if depth > MAX_DEPTH or not desc.fields:
        return st.just(cls())
    fields = list(desc.fields)
    # Required fields, enums and fields with hints are set 7 times in 8, others every other time.
    likely = {
        f.number
        for f in fields
        if _required(f) or f.enum_type is not None or (f.name, f.type) in _HINTS or f.name in _FLOAT_LISTS
    }

    @st.composite
    def build(draw: Callable) -> message.Message:
        msg = cls()
        for field in draw(st.permutations(fields)):
            odds = _LIKELY if field.number in likely else _EVEN
            if draw(odds):
                _set(msg, field, draw(_field_values(field, depth)))
        return msg

    return build()


def nested_filter(levels: int) -> filter_pb2.Filter:
    """A Filter nested `levels` deep through Condition.filter (past MAX_FILTER_DEPTH, and past
    protobuf's recursion limit when large)."""
    root = filter_pb2.Filter()
    current = root
    for _ in range(levels):
        current = current.must.add().filter
    current.must.add().field.key = "tag"
    return root


def deep_struct(levels: int) -> struct_pb2.Struct:
    root = struct_pb2.Struct()
    current = root
    for _ in range(levels):
        current = current.fields["k"].struct_value
    current.fields["leaf"].number_value = 1.0
    return root
