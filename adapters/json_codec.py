"""Proto3 JSON mapping both ways, with a fast path for vectors and errors that name the field.

Semantics follow the proto3 JSON spec (as `google.protobuf.json_format` does): lowerCamelCase
or original field names accepted, lowerCamelCase written; 64-bit integers written as strings
and accepted as strings or numbers; enums by name (numbers accepted); bytes as base64;
well-known types (Timestamp, Duration, Struct, Value, wrappers, ...) in their special forms;
fields at their default value omitted unless they have presence.

Two differences in *how*, not *what*:
- `repeated float` fields (embeddings) are converted as a block through numpy, written with the
  shortest float32 representation: json_format spends ~0.8 ms on 384 floats, this ~20 µs.
- A `repeated float` field also accepts a base64 string of little-endian float32 values, and
  responses can be asked to write them that way (`float_encoding=base64`).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
import orjson
from google.protobuf import descriptor, json_format, message

from citadel.server.errors import ApiError
from citadel.server.servicers.validation import MAX_FILTER_DEPTH
from citadel.vector.v1 import filter_pb2

FD = descriptor.FieldDescriptor

# Well-known types whose JSON form is special; json_format handles them one value at a time.
WELL_KNOWN = frozenset(
    {
        "google.protobuf.Any",
        "google.protobuf.Duration",
        "google.protobuf.Empty",
        "google.protobuf.FieldMask",
        "google.protobuf.ListValue",
        "google.protobuf.Struct",
        "google.protobuf.Timestamp",
        "google.protobuf.Value",
        "google.protobuf.BoolValue",
        "google.protobuf.BytesValue",
        "google.protobuf.DoubleValue",
        "google.protobuf.FloatValue",
        "google.protobuf.Int32Value",
        "google.protobuf.Int64Value",
        "google.protobuf.StringValue",
        "google.protobuf.UInt32Value",
        "google.protobuf.UInt64Value",
    }
)
WRAPPERS = frozenset(n for n in WELL_KNOWN if n.endswith("Value") and n != "google.protobuf.Value")

_INT_RANGES = {
    FD.CPPTYPE_INT32: (-(2**31), 2**31 - 1, "int32"),
    FD.CPPTYPE_UINT32: (0, 2**32 - 1, "uint32"),
    FD.CPPTYPE_INT64: (-(2**63), 2**63 - 1, "int64"),
    FD.CPPTYPE_UINT64: (0, 2**64 - 1, "uint64"),
}
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_MAX_SAFE_INTEGER = 2**53  # integers beyond this lose precision as JSON doubles
_SPECIAL_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

# How deep messages may nest in a request: the deepest our contracts need is a filter at its
# limit (request → 9 filters, each inside a condition: 19 levels). Checked while decoding, so
# no input, however deep, can exhaust Python's stack (RecursionError, a 500).
MAX_MESSAGE_DEPTH = 32
# Message types that contain themselves, with the servicer's own limit and words for them, so
# a filter too deep is the same 400 whether the decoder or the validator finds it first.
SELF_NESTING_LIMITS: dict[str, tuple[int, str]] = {
    filter_pb2.Filter.DESCRIPTOR.full_name: (
        MAX_FILTER_DEPTH,
        f"filters nest at most {MAX_FILTER_DEPTH} levels deep",
    ),
}
_NO_NESTING: dict[str, int] = {}


class JsonError(ApiError):
    """INVALID_ARGUMENT for a request body, query parameter or path value that does not map."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(grpc.StatusCode.INVALID_ARGUMENT, f"{where}: {problem}" if where else problem)


# ---------------------------------------------------------------------------------------------
# bytes <-> JSON text


def loads(body: bytes) -> Any:
    """Parses a request body; malformed JSON is an error that says where it broke."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise JsonError("", f"request body is not valid JSON: {e}") from None


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)


def is_map(field: descriptor.FieldDescriptor) -> bool:
    return field.is_repeated and field.message_type is not None and field.message_type.GetOptions().map_entry


def is_float_list(field: descriptor.FieldDescriptor) -> bool:
    return field.is_repeated and field.cpp_type == FD.CPPTYPE_FLOAT


def real_oneof(field: descriptor.FieldDescriptor) -> descriptor.OneofDescriptor | None:
    """The field's oneof, unless it is the synthetic one of a proto3 `optional` field."""
    oneof = field.containing_oneof
    if oneof is None or (len(oneof.fields) == 1 and oneof.name == f"_{field.name}"):
        return None
    return oneof


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {_short(value)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


# ---------------------------------------------------------------------------------------------
# JSON -> message


def decode(
    data: Any, msg: message.Message, where: str = "", depth: int = 0, nesting: dict[str, int] = _NO_NESTING
) -> None:
    """Fills `msg` from a parsed JSON value; `where` prefixes field names in errors. `depth`
    counts the messages around this one, `nesting` how many of each self-containing type."""
    desc = msg.DESCRIPTOR
    if depth >= MAX_MESSAGE_DEPTH:
        raise JsonError(where, f"messages nest more than {MAX_MESSAGE_DEPTH} levels deep")
    limit = SELF_NESTING_LIMITS.get(desc.full_name)
    if limit is not None:
        around = nesting.get(desc.full_name, 0)
        if around > limit[0]:
            raise JsonError(where, limit[1])
        nesting = {**nesting, desc.full_name: around + 1}
    if desc.full_name in WELL_KNOWN:
        _decode_well_known(data, msg, where)
        return
    if not isinstance(data, dict):
        raise JsonError(where, f"expected a JSON object ({desc.name}), got {_kind(data)}")
    names = _field_names(desc)
    seen: dict[descriptor.FieldDescriptor, str] = {}
    oneofs: dict[descriptor.OneofDescriptor, str] = {}
    for key, value in data.items():
        field = names.get(key)
        if field is None:
            raise JsonError(_join(where, key), f"unknown field; {desc.name} has {_field_list(desc)}")
        if field in seen:
            raise JsonError(_join(where, key), f"given twice (also as {seen[field]!r})")
        seen[field] = key
        if value is None and not (
            field.message_type and field.message_type.full_name == "google.protobuf.Value"
        ):
            continue  # null means "not set" in proto3 JSON
        oneof = real_oneof(field)
        if oneof is not None:
            if oneof in oneofs:
                raise JsonError(
                    _join(where, key),
                    f"only one of oneof {oneof.name!r} may be set; {oneofs[oneof]!r} is too",
                )
            oneofs[oneof] = key
        decode_field(field, value, msg, _join(where, key), depth, nesting)


def decode_field(
    field: descriptor.FieldDescriptor,
    value: Any,
    msg: message.Message,
    where: str,
    depth: int = 0,
    nesting: dict[str, int] = _NO_NESTING,
) -> None:
    """Sets one field of `msg` from its JSON value (repeated and map fields are appended to);
    `depth` and `nesting` are `msg`'s, as decode() counts them."""
    if is_map(field):
        _decode_map(field, value, msg, where, depth, nesting)
    elif field.is_repeated:
        _decode_list(field, value, getattr(msg, field.name), where, depth, nesting)
    elif field.cpp_type == FD.CPPTYPE_MESSAGE:
        sub = getattr(msg, field.name)
        sub.SetInParent()
        decode(value, sub, where, depth + 1, nesting)
    else:
        setattr(msg, field.name, scalar(field, value, where))


def _decode_map(
    field: descriptor.FieldDescriptor,
    value: Any,
    msg: message.Message,
    where: str,
    depth: int,
    nesting: dict[str, int],
) -> None:
    if not isinstance(value, dict):
        raise JsonError(where, f"expected a JSON object (a map), got {_kind(value)}")
    key_field = field.message_type.fields_by_name["key"]
    value_field = field.message_type.fields_by_name["value"]
    target = getattr(msg, field.name)
    for raw_key, item in value.items():
        at = f"{where}[{_short(raw_key)}]"
        key = map_key(key_field, raw_key, at)
        if value_field.cpp_type == FD.CPPTYPE_MESSAGE:
            decode(item, target[key], at, depth + 1, nesting)
        else:
            target[key] = scalar(value_field, item, at)


def map_key(key_field: descriptor.FieldDescriptor, raw: str, where: str) -> Any:
    """Map keys are always strings in JSON; convert them to the key type."""
    if key_field.cpp_type == FD.CPPTYPE_STRING:
        return raw
    if key_field.cpp_type == FD.CPPTYPE_BOOL:
        if raw not in ("true", "false"):
            raise JsonError(where, "map key must be 'true' or 'false'")
        return raw == "true"
    return scalar(key_field, raw, where)


def _decode_list(
    field: descriptor.FieldDescriptor, value: Any, target, where: str, depth: int, nesting: dict[str, int]
) -> None:
    if field.cpp_type == FD.CPPTYPE_FLOAT and isinstance(value, str):
        target.extend(floats_from_base64(value, where).tolist())
        return
    if not isinstance(value, list):
        hint = " or a base64 string of little-endian float32" if field.cpp_type == FD.CPPTYPE_FLOAT else ""
        raise JsonError(where, f"expected a JSON array{hint}, got {_kind(value)}")
    if field.cpp_type in (FD.CPPTYPE_FLOAT, FD.CPPTYPE_DOUBLE) and {type(x) for x in value} <= {int, float}:
        if field.cpp_type == FD.CPPTYPE_FLOAT:
            _check_float32_range(value, where)
        target.extend(value)  # the vector fast path: one C call for the whole block
        return
    if field.cpp_type == FD.CPPTYPE_MESSAGE:
        for i, item in enumerate(value):
            decode(item, target.add(), f"{where}[{i}]", depth + 1, nesting)
        return
    target.extend([scalar(field, item, f"{where}[{i}]") for i, item in enumerate(value)])


def _check_float32_range(values: list, where: str) -> None:
    arr = np.asarray(values, dtype=np.float64)
    bad = np.flatnonzero(np.abs(arr) > _FLOAT32_MAX)
    if bad.size:
        i = int(bad[0])
        raise JsonError(f"{where}[{i}]", f"{values[i]!r} is out of range for float")


def floats_from_base64(text: str, where: str) -> np.ndarray:
    raw = bytes_from_base64(text, where)
    if len(raw) % 4:
        raise JsonError(where, f"base64 float32 data must be a multiple of 4 bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype="<f4")


def floats_to_base64(values) -> str:
    return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode()


def bytes_from_base64(text: str, where: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise JsonError(where, "is not valid base64") from None


def scalar(field: descriptor.FieldDescriptor, value: Any, where: str, text: bool = False) -> Any:
    """One scalar (or enum) value from JSON. With `text`, `value` is a string from a URL
    (path or query), where booleans are spelled out and numbers are not quoted."""
    cpp = field.cpp_type
    if cpp == FD.CPPTYPE_STRING:
        if not isinstance(value, str):
            raise JsonError(where, f"expected a string, got {_kind(value)}")
        return bytes_from_base64(value, where) if field.type == FD.TYPE_BYTES else value
    if cpp == FD.CPPTYPE_BOOL:
        if isinstance(value, bool):
            return value
        if text and value in ("true", "false"):
            return value == "true"
        raise JsonError(where, f"expected true or false, got {_kind(value)}")
    if cpp in _INT_RANGES:
        return _integer(cpp, value, where)
    if cpp in (FD.CPPTYPE_FLOAT, FD.CPPTYPE_DOUBLE):
        return _float(cpp, value, where)
    if cpp == FD.CPPTYPE_ENUM:
        return _enum(field.enum_type, value, where)
    raise JsonError(where, "a message cannot be given as a single value")


def _integer(cpp: int, value: Any, where: str) -> int:
    low, high, name = _INT_RANGES[cpp]
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise JsonError(where, f"expected an integer ({name}), got {_kind(value)}")
    number: int
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            try:
                as_float = float(value)
            except ValueError:
                raise JsonError(where, f"expected an integer ({name}), got {_kind(value)}") from None
            if not as_float.is_integer():
                raise JsonError(where, f"expected an integer ({name}), got {_kind(value)}") from None
            number = int(as_float)
    elif isinstance(value, float):
        if not value.is_integer():
            raise JsonError(where, f"expected an integer ({name}), got {_kind(value)}")
        number = int(value)
    else:
        number = value
    if not low <= number <= high:
        raise JsonError(where, f"{number} is out of range for {name}")
    return number


def _float(cpp: int, value: Any, where: str) -> float:
    name = "float" if cpp == FD.CPPTYPE_FLOAT else "double"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise JsonError(where, f"expected a number ({name}), got {_kind(value)}")
    if isinstance(value, str):
        if value in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[value]
        try:
            number = float(value)
        except ValueError:
            raise JsonError(where, f"expected a number ({name}), got {_kind(value)}") from None
        if not math.isfinite(number):
            raise JsonError(where, f"expected a number ({name}), got {_kind(value)}")
    else:
        number = float(value)
    if cpp == FD.CPPTYPE_FLOAT and math.isfinite(number) and abs(number) > _FLOAT32_MAX:
        raise JsonError(where, f"{value!r} is out of range for float")
    return number


def _enum(enum: descriptor.EnumDescriptor, value: Any, where: str) -> int:
    if isinstance(value, str):
        found = enum.values_by_name.get(value)
        if found is not None:
            return found.number
        if value.lstrip("-").isdigit():
            value = int(value)
        else:
            names = ", ".join(v.name for v in enum.values)
            raise JsonError(where, f"{_short(value)} is not a {enum.name}; expected one of {names}")
    if isinstance(value, int) and not isinstance(value, bool):
        if not -(2**31) <= value < 2**31:
            raise JsonError(where, f"{value} is out of range for enum {enum.name}")
        return value  # proto3 enums are open: unknown numbers are kept
    raise JsonError(where, f"expected a {enum.name} name, got {_kind(value)}")


def _decode_well_known(data: Any, msg: message.Message, where: str) -> None:
    try:
        json_format.ParseDict(data, msg)
    except json_format.ParseError as e:
        problem = str(e).split(" at ", 1)[0]
        raise JsonError(where, f"invalid {msg.DESCRIPTOR.name}: {problem}") from None
    except (TypeError, ValueError, KeyError, AttributeError):
        # json_format lets some wrong JSON through as Python's own errors (StringValue given 5,
        # Int64Value given [1], an Any without "value"): still the caller's mistake, not a 500.
        raise JsonError(where, f"invalid {msg.DESCRIPTOR.name}: got {_kind(data)}") from None


def _field_names(desc: descriptor.Descriptor) -> dict[str, descriptor.FieldDescriptor]:
    names = _NAMES.get(desc)
    if names is None:
        names = {}
        for f in desc.fields:
            names[f.name] = f
            names[f.json_name] = f
        _NAMES[desc] = names
    return names


def _field_list(desc: descriptor.Descriptor) -> str:
    fields = [f.json_name for f in desc.fields]
    return "fields " + ", ".join(fields) if fields else "no fields"


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


_NAMES: dict[descriptor.Descriptor, dict[str, descriptor.FieldDescriptor]] = {}


# ---------------------------------------------------------------------------------------------
# message -> JSON


class Encoder:
    """Writes messages as proto3 JSON values (dicts of plain values and numpy float32 arrays)."""

    def __init__(self, floats_base64: bool = False) -> None:
        self.floats_base64 = floats_base64

    def message(self, msg: message.Message) -> Any:
        desc = msg.DESCRIPTOR
        if desc.full_name in WELL_KNOWN:
            return _well_known_to_json(msg)
        out = {}
        for field, value in msg.ListFields():
            out[field.json_name] = self.field(field, value)
        return out

    def field(self, field: descriptor.FieldDescriptor, value: Any) -> Any:
        """A field's JSON value, given its current value in the message."""
        if is_map(field):
            key_field = field.message_type.fields_by_name["key"]
            value_field = field.message_type.fields_by_name["value"]
            return {_map_key_text(key_field, k): self.single(value_field, v) for k, v in value.items()}
        if field.is_repeated:
            if field.cpp_type == FD.CPPTYPE_FLOAT:
                return self.floats(value)
            convert = self._single_fn(field)
            return [convert(field, v) for v in value]
        return self.single(field, value)

    def floats(self, values) -> Any:
        arr = np.fromiter(values, dtype=np.float32, count=len(values))
        if self.floats_base64:
            return base64.b64encode(arr.astype("<f4", copy=False).tobytes()).decode()
        if np.isfinite(arr).all():
            return arr  # orjson writes float32 arrays with the shortest round-tripping digits
        return [_float_json(float(x), True) for x in arr]

    def single(self, field: descriptor.FieldDescriptor, value: Any) -> Any:
        return self._single_fn(field)(field, value)

    def _single_fn(
        self, field: descriptor.FieldDescriptor
    ) -> Callable[[descriptor.FieldDescriptor, Any], Any]:
        if field.cpp_type == FD.CPPTYPE_MESSAGE:
            return lambda _f, v: self.message(v)
        return _SCALAR_TO_JSON[field.cpp_type]


def _map_key_text(key_field: descriptor.FieldDescriptor, key: Any) -> str:
    if key_field.cpp_type == FD.CPPTYPE_BOOL:
        return "true" if key else "false"
    return str(key)


def _float_json(value: float, single: bool) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return np.float32(value) if single else value


def _enum_json(field: descriptor.FieldDescriptor, value: int) -> Any:
    found = field.enum_type.values_by_number.get(value)
    return found.name if found is not None else value


def _string_json(field: descriptor.FieldDescriptor, value: Any) -> Any:
    return base64.b64encode(value).decode() if field.type == FD.TYPE_BYTES else value


_SCALAR_TO_JSON: dict[int, Callable[[descriptor.FieldDescriptor, Any], Any]] = {
    FD.CPPTYPE_INT32: lambda _f, v: v,
    FD.CPPTYPE_UINT32: lambda _f, v: v,
    FD.CPPTYPE_INT64: lambda _f, v: str(v),
    FD.CPPTYPE_UINT64: lambda _f, v: str(v),
    FD.CPPTYPE_BOOL: lambda _f, v: v,
    FD.CPPTYPE_FLOAT: lambda _f, v: _float_json(v, True),
    FD.CPPTYPE_DOUBLE: lambda _f, v: _float_json(v, False),
    FD.CPPTYPE_ENUM: _enum_json,
    FD.CPPTYPE_STRING: _string_json,
}


def _well_known_to_json(msg: message.Message) -> Any:
    name = msg.DESCRIPTOR.full_name
    if name == "google.protobuf.Timestamp":
        return msg.ToJsonString()
    if name == "google.protobuf.Struct":
        return {k: _value_json(v) for k, v in msg.fields.items()}
    if name == "google.protobuf.ListValue":
        return [_value_json(v) for v in msg.values]
    if name == "google.protobuf.Value":
        return _value_json(msg)
    return json_format.MessageToDict(msg)


def _value_json(v: message.Message) -> Any:
    """A Struct value; whole numbers are written as integers (a Struct stores every number as
    a double, but `"year": 2020` should come back as it went in, not as 2020.0)."""
    kind = v.WhichOneof("kind")
    if kind == "number_value":
        n = v.number_value
        return int(n) if n.is_integer() and abs(n) < _MAX_SAFE_INTEGER else n
    if kind == "string_value":
        return v.string_value
    if kind == "bool_value":
        return v.bool_value
    if kind == "struct_value":
        return {k: _value_json(x) for k, x in v.struct_value.fields.items()}
    if kind == "list_value":
        return [_value_json(x) for x in v.list_value.values]
    return None


def to_json(msg: message.Message, floats_base64: bool = False) -> Any:
    return Encoder(floats_base64).message(msg)
