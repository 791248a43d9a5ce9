"""Request validation that runs before anything is written.

Each check raises INVALID_ARGUMENT with a message that starts with the field's path, in the
request's own names (`vectors[3].embedding[17]: ...`), so a caller can fix the exact value.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from citadel.server.errors import invalid
from citadel.server.store.base import RESERVED_PAYLOAD_KEY
from citadel.vector.v1 import filter_pb2

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
# A metadata path as Qdrant parses one: keys of letters, digits, '_' and '-' (or any text in
# double quotes) joined by '.', each maybe followed by [] or [N]. The store rejects others,
# so they are refused here, naming the field, rather than failing inside the store.
_KEY = r'(?:[\w-]+|"[^"\\]*")'
# An array index of at most 9 digits: Qdrant refuses one past 64 bits as an invalid path.
_INDEX = r"(?:\[[0-9]{0,9}\])"
_PATH = re.compile(rf"{_KEY}{_INDEX}*(?:\.{_KEY}{_INDEX}*)*")
MAX_ID_LENGTH = 256
MAX_DIMENSION = 65536
MAX_FILTER_DEPTH = 8
# Results of one search or query, and how far into them a caller may skip.
MAX_LIMIT = 1000
MAX_OFFSET = 100_000
# Characters of a full-text condition's or a keyword query's words.
MAX_WORDS_CHARS = 1024
# Metadata nests at most this deep (objects and lists): enough for any document a filter can
# reach, and a bound on the work one value costs every later read.
MAX_METADATA_DEPTH = 32
_PLAIN_KEY = re.compile(r"[\w-]+")


@dataclass(frozen=True)
class TextLimits:
    """What one request may ask a model to embed: limits.embed_texts_per_call and
    limits.embed_chars_per_text, applied by the embedding service to every caller's texts."""

    texts_per_call: int
    chars_per_text: int

    @classmethod
    def from_settings(cls, settings) -> TextLimits:
        return cls(settings.embed_texts_per_call, settings.embed_chars_per_text)


def valid_collection_name(name: str) -> bool:
    return bool(_NAME.fullmatch(name))


def collection_name(field: str, name: str) -> str:
    if not name:
        raise invalid(field, "is required")
    if not _NAME.fullmatch(name):
        raise invalid(
            field,
            f"{name!r} is not a valid collection name: use 1 to 63 letters, digits, '_' or '-', "
            "starting with a letter or digit",
        )
    return name


def vector_id(field: str, value: str) -> str:
    if not value:
        raise invalid(field, "is required")
    if len(value) > MAX_ID_LENGTH:
        raise invalid(field, f"is {len(value)} characters long; the limit is {MAX_ID_LENGTH}")
    return value


def metadata_path(field: str, key: str) -> str:
    """A key that names a metadata field (an index or a filter): required, a path, not reserved."""
    if not key:
        raise invalid(field, "is required")
    if not _PATH.fullmatch(key):
        raise invalid(
            field,
            f"{key!r} is not a metadata path: join keys of letters, digits, '_' or '-' with '.' "
            '(a.b, items[].id), putting other keys in double quotes ("first name")',
        )
    if key.lstrip('"').startswith(RESERVED_PAYLOAD_KEY):
        raise invalid(field, f"keys starting with {RESERVED_PAYLOAD_KEY!r} are reserved")
    return key


def embedding(field: str, values: Sequence[float], dimension: int, collection: str) -> np.ndarray:
    """The values as float32, checked for length and finiteness. An upserted vector is kept in
    this form until the store writes it (keywords.point_vectors): numpy reads a `repeated
    float` field in ~2.5 µs, where a list of Python floats costs ~13 µs, and a whole request's
    lists made at once and read later by the engine cost more again than one slice's."""
    if len(values) != dimension:
        raise invalid(
            field,
            f"has {len(values)} values but collection {collection!r} has dimension {dimension}",
        )
    array = np.asarray(values, dtype=np.float32)
    finite = np.isfinite(array)
    if not finite.all():
        index = int(np.argmin(finite))
        raise invalid(f"{field}[{index}]", f"{array[index]} is not a finite number")
    return array


def embedding_rows(embeddings: Sequence[Sequence[float]], dimension: int) -> np.ndarray | None:
    """Many vectors' values as one float32 matrix when every one has `dimension` values and all
    are finite, checked at once (~2.9 µs a 384-d vector against ~4.9 one at a time); None when
    any is not, for `embedding` to check each and name the first fault as it always does.
    (At dimension 0 none is taken here: a vector given by text alone has no values to check.)"""
    if dimension < 1 or any(len(values) != dimension for values in embeddings):
        return None
    rows = np.array(embeddings, dtype=np.float32)
    return rows if np.isfinite(rows).all() else None


def embedding_values(field: str, values: Sequence[float], dimension: int, collection: str) -> list[float]:
    """The values of a `repeated float` field as a list of floats, checked like `embedding`
    (same errors). The list is what the store takes. For one 384-value vector (this runs on
    every search) the two ways cost about the same: ~8.6 µs this way, ~8.1 µs through numpy's
    asarray/isfinite/tolist (measured 2026-11-26; an earlier ~20 against ~50 µs no longer
    holds), so the path without numpy stays: its errors name the first bad index directly."""
    if len(values) != dimension:
        raise invalid(
            field,
            f"has {len(values)} values but collection {collection!r} has dimension {dimension}",
        )
    floats = values[:]  # a list from a repeated field (cheaper than list(); nothing else copies)
    if type(floats) is not list:
        floats = [float(x) for x in values]
    # A sum is finite when every value is (NaN and ±inf carry through), and a double sum of
    # finite float32s cannot overflow; other inputs that overflow fall through to the scan.
    if not math.isfinite(sum(floats)):
        for index, x in enumerate(floats):
            if not math.isfinite(x):
                raise invalid(f"{field}[{index}]", f"{float(np.float32(x))} is not a finite number")
    return floats


def metadata(field: str, values: dict) -> None:
    """User metadata (a Struct as a dict): no reserved top-level key, every number finite (the
    store cannot keep NaN or ±inf), nesting at most MAX_METADATA_DEPTH deep. Errors name the
    value's path: `vectors[3].metadata.price: nan is not a finite number`."""
    for key, value in values.items():
        if key.startswith(RESERVED_PAYLOAD_KEY):
            raise invalid(f"{field}.{key}", f"keys starting with {RESERVED_PAYLOAD_KEY!r} are reserved")
        if type(value) is float or type(value) is dict or type(value) is list:  # ints, str, bool, None pass
            _metadata_value(f"{field}.{_key(key)}", value, 1)


def _metadata_value(field: str, value, depth: int) -> None:
    if type(value) is float:
        if not math.isfinite(value):
            raise invalid(field, f"{value} is not a finite number")
        return
    if type(value) is dict:
        items = ((f"{field}.{_key(k)}", v) for k, v in value.items())
    elif type(value) is list:
        items = ((f"{field}[{i}]", v) for i, v in enumerate(value))
    else:
        return
    if depth >= MAX_METADATA_DEPTH:
        raise invalid(field, f"metadata nests at most {MAX_METADATA_DEPTH} levels deep")
    for where, v in items:
        _metadata_value(where, v, depth + 1)


def _key(key: str) -> str:
    """A metadata key as a path segment: quoted when it is not letters, digits, '_' and '-'."""
    return key if _PLAIN_KEY.fullmatch(key) else json.dumps(key)


def embed_texts(field: str, texts: Sequence[str], limits: TextLimits) -> None:
    """The texts of one real-time embedding call: at most texts_per_call, none blank, none
    longer than chars_per_text. `field` names the repeated field (`texts`)."""
    if len(texts) > limits.texts_per_call:
        raise invalid(
            field,
            f"has {len(texts)} texts; limits.embed_texts_per_call is {limits.texts_per_call}: "
            "send more with BatchService.SubmitBatchJob (operation OPERATION_EMBED)",
        )
    for i, text in enumerate(texts):
        embed_text(f"{field}[{i}]", text, limits)


def embed_text(field: str, text: str, limits: TextLimits) -> None:
    """One text to embed: not blank, at most chars_per_text characters."""
    if len(text) > limits.chars_per_text:
        raise invalid(
            field,
            f"is {len(text)} characters; limits.embed_chars_per_text is {limits.chars_per_text}: "
            "split the text",
        )
    if not text.strip():
        raise invalid(field, "must not be blank")


def bounded(field: str, value: int, default: int, maximum: int) -> int:
    """A page size or limit: 0 takes the default, otherwise 1..maximum."""
    if value == 0:
        return default
    if value < 0 or value > maximum:
        raise invalid(field, f"must be between 1 and {maximum}, got {value}")
    return value


def finite_number(field: str, value: float) -> float:
    if not math.isfinite(value):
        raise invalid(field, f"{value} is not a finite number")
    return value


def has_conditions(f: filter_pb2.Filter) -> bool:
    """Whether the filter tests anything: a field or an id, at any depth. One that does not
    (`{}`, or only empty nested filters) matches every vector, or none."""
    for c in (*f.must, *f.should, *f.must_not):
        kind = c.WhichOneof("condition")
        if kind in ("field", "has_id", "text_match") or (kind == "filter" and has_conditions(c.filter)):
            return True
    return False


def words(field: str, text: str) -> str:
    """Text for a full-text condition or a keyword query: 1 to MAX_WORDS_CHARS characters
    holding a word."""
    if not text.strip():
        raise invalid(field, "is required: the words to look for")
    if len(text) > MAX_WORDS_CHARS:
        raise invalid(field, f"is {len(text)} characters long; at most {MAX_WORDS_CHARS}")
    return text


def filter_(field: str, f: filter_pb2.Filter, depth: int = 0) -> None:
    if depth > MAX_FILTER_DEPTH:
        raise invalid(field, f"filters nest at most {MAX_FILTER_DEPTH} levels deep")
    for clause in ("must", "should", "must_not"):
        for i, condition in enumerate(getattr(f, clause)):
            _condition(f"{field}.{clause}[{i}]", condition, depth)


def _condition(field: str, c: filter_pb2.Condition, depth: int) -> None:
    kind = c.WhichOneof("condition")
    if kind is None:
        raise invalid(field, "set one of field, has_id, filter or text_match")
    if kind == "text_match":
        words(f"{field}.text_match.query", c.text_match.query)
    elif kind == "filter":
        filter_(f"{field}.filter", c.filter, depth + 1)
    elif kind == "has_id":
        if not c.has_id.ids:
            raise invalid(f"{field}.has_id.ids", "must list at least one id")
        for j, i in enumerate(c.has_id.ids):
            vector_id(f"{field}.has_id.ids[{j}]", i)
    else:
        _field_condition(f"{field}.field", c.field)


def _field_condition(field: str, fc: filter_pb2.FieldCondition) -> None:
    metadata_path(f"{field}.key", fc.key)
    if not fc.HasField("match") and not fc.HasField("range"):
        raise invalid(field, "set match, range or both")
    if fc.HasField("match"):
        kind = fc.match.WhichOneof("value")
        if kind is None:
            raise invalid(
                f"{field}.match",
                "set one of keyword, integer, boolean, any_keyword, any_integer, text, phrase",
            )
        if kind in ("any_keyword", "any_integer") and not getattr(fc.match, kind).values:
            raise invalid(f"{field}.match.{kind}.values", "must list at least one value")
        if kind in ("text", "phrase"):
            words(f"{field}.match.{kind}", getattr(fc.match, kind))
    if fc.HasField("range"):
        bounds = [b for b in ("lt", "gt", "lte", "gte") if fc.range.HasField(b)]
        if not bounds:
            raise invalid(f"{field}.range", "set at least one of lt, gt, lte, gte")
        for b in bounds:
            finite_number(f"{field}.range.{b}", getattr(fc.range, b))
