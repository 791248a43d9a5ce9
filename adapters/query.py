"""Query parameters → request fields, for the fields neither the path nor the body carries.

    ?limit=5                  scalar                      ?filter.must_not.key=x   nested messages
    ?tags=a&tags=b            repeated: one per value     ?labels[team]=search     map entry
    ?at=2024-01-02T03:04:05Z  Timestamp, Duration, FieldMask and wrappers take their JSON string

Names may be original (`page_size`) or lowerCamelCase (`pageSize`). Repeated messages and
Struct-like fields cannot be written as query parameters (send them in a body). A parameter
that names no field, repeats a single field, or touches a field the path or body owns is a
400 naming the parameter.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl

from google.protobuf import descriptor, message

from citadel.adapters.json_codec import (
    FD,
    WELL_KNOWN,
    WRAPPERS,
    JsonError,
    decode,
    floats_from_base64,
    is_map,
    map_key,
    real_oneof,
    scalar,
)

# Parameters that steer the adapter rather than set a field (see openapi.SYSTEM_PARAMETERS).
FLOAT_ENCODING = "float_encoding"
SYSTEM_PARAMETERS = frozenset({FLOAT_ENCODING})
TEXT_WELL_KNOWN = frozenset(
    {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask", *WRAPPERS}
)


def parse(query_string: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(query_string.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise JsonError("query string", "is not valid UTF-8") from None


def split_key(key: str) -> tuple[list[str], str | None]:
    """`a.b[k]` → (["a", "b"], "k"); a key without brackets has no map key."""
    if key.endswith("]") and "[" in key:
        head, _, map_part = key.partition("[")
        return head.split("."), map_part[:-1]
    return key.split("."), None


def apply(
    msg: message.Message,
    pairs: Iterable[tuple[str, str]],
    owned: frozenset[str],
    body_is_everything: bool,
) -> None:
    """Sets fields of `msg` from query pairs. `owned` holds the dotted field paths the path
    template or the body field already carry; with body "*", no parameter may set a field."""
    singles: set[str] = set()
    for key, value in pairs:
        if key in SYSTEM_PARAMETERS:
            continue
        if body_is_everything:
            raise JsonError(
                f"query parameter {key!r}", "this method takes its fields in the JSON body, not the query"
            )
        names, map_key_text = split_key(key)
        target, field, dotted = _walk(msg, names, key)
        for path in owned:
            if dotted == path or dotted.startswith(path + ".") or path.startswith(dotted + "."):
                raise JsonError(f"query parameter {key!r}", f"{path!r} is set by the URL path or body")
        where = f"query parameter {key!r}"
        if map_key_text is not None:
            if not is_map(field):
                raise JsonError(where, f"{field.name!r} is not a map; [key] applies to maps only")
            _set_map(target, field, map_key_text, value, where)
            continue
        if is_map(field):
            raise JsonError(where, f"{field.name!r} is a map: write {key}[KEY]=VALUE")
        if field.is_repeated:
            _append(target, field, value, where)
            continue
        if dotted in singles:
            raise JsonError(where, "given more than once for a single field")
        singles.add(dotted)
        _check_oneof(target, field, where)
        set_from_text(target, field, value, where)


def _walk(msg: message.Message, names: list[str], key: str):
    target = msg
    dotted = []
    for i, name in enumerate(names):
        desc = target.DESCRIPTOR
        field = desc.fields_by_name.get(name) or _by_json_name(desc, name)
        if field is None:
            known = ", ".join(f.json_name for f in desc.fields)
            raise JsonError(
                f"query parameter {key!r}", f"{desc.name} has no field {name!r} (fields: {known})"
            )
        dotted.append(field.name)
        if i == len(names) - 1:
            return target, field, ".".join(dotted)
        if (
            field.cpp_type != FD.CPPTYPE_MESSAGE
            or field.is_repeated
            or field.message_type.full_name in WELL_KNOWN
        ):
            raise JsonError(f"query parameter {key!r}", f"{field.name!r} has no fields to select with '.'")
        _check_oneof(target, field, f"query parameter {key!r}")
        target = getattr(target, field.name)
    raise JsonError(f"query parameter {key!r}", "is empty")


def _by_json_name(desc: descriptor.Descriptor, name: str) -> descriptor.FieldDescriptor | None:
    for f in desc.fields:
        if f.json_name == name:
            return f
    return None


def _check_oneof(target: message.Message, field: descriptor.FieldDescriptor, where: str) -> None:
    oneof = real_oneof(field)
    if oneof is not None:
        current = target.WhichOneof(oneof.name)
        if current is not None and current != field.name:
            raise JsonError(where, f"only one of oneof {oneof.name!r} may be set; {current!r} is too")


def set_from_text(target: message.Message, field: descriptor.FieldDescriptor, text: str, where: str) -> None:
    """Sets a singular field from URL text (a path variable or query value)."""
    if field.cpp_type == FD.CPPTYPE_MESSAGE:
        sub = getattr(target, field.name)
        _message_from_text(sub, text, where)
        return
    setattr(target, field.name, scalar(field, text, where, text=True))


def _message_from_text(sub: message.Message, text: str, where: str) -> None:
    name = sub.DESCRIPTOR.full_name
    if name not in TEXT_WELL_KNOWN:
        raise JsonError(where, f"a {sub.DESCRIPTOR.name} cannot be given as a URL value; send it in a body")
    if name in WRAPPERS:
        sub.value = scalar(sub.DESCRIPTOR.fields_by_name["value"], text, where, text=True)
        return
    decode(text, sub, where)


def _append(target: message.Message, field: descriptor.FieldDescriptor, text: str, where: str) -> None:
    values = getattr(target, field.name)
    if field.cpp_type == FD.CPPTYPE_MESSAGE:
        raise JsonError(where, f"{field.name!r} is a list of messages; send it in a body")
    if field.cpp_type == FD.CPPTYPE_FLOAT:
        try:
            values.append(scalar(field, text, where, text=True))
        except JsonError:
            values.extend(floats_from_base64(text, where).tolist())
        return
    values.append(scalar(field, text, where, text=True))


def _set_map(
    target: message.Message, field: descriptor.FieldDescriptor, key_text: str, text: str, where: str
) -> None:
    key_field = field.message_type.fields_by_name["key"]
    value_field = field.message_type.fields_by_name["value"]
    key = map_key(key_field, key_text, where)
    entries = getattr(target, field.name)
    if key in entries and value_field.cpp_type != FD.CPPTYPE_MESSAGE:
        raise JsonError(where, "given more than once for the same map key")
    if value_field.cpp_type == FD.CPPTYPE_MESSAGE:
        _message_from_text(entries[key], text, where)
    else:
        entries[key] = scalar(value_field, text, where, text=True)
