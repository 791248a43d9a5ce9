"""Metadata values, embedding texts and empty filters: refused with the field's path, before
anything is written or embedded."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2

from citadel.server.errors import ApiError
from citadel.server.servicers import validation as check
from citadel.server.servicers.convert import struct_to_dict
from citadel.vector.v1 import filter_pb2

LIMITS = check.TextLimits(texts_per_call=3, chars_per_text=10)


def _message(fn, *args) -> str:
    with pytest.raises(ApiError) as e:
        fn(*args)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    return e.value.message


def _struct(value: dict) -> dict:
    s = struct_pb2.Struct()
    s.update(value)
    return struct_to_dict(s)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"price": float("nan")}, "vectors[3].metadata.price: nan is not a finite number"),
        ({"price": float("inf")}, "vectors[3].metadata.price: inf is not a finite number"),
        ({"a": {"b": [1, 2, float("-inf")]}}, "vectors[3].metadata.a.b[2]: -inf is not a finite number"),
        ({"first name": float("nan")}, 'vectors[3].metadata."first name": nan is not a finite number'),
        ({"_citadel": 1}, "vectors[3].metadata._citadel: keys starting with '_citadel' are reserved"),
    ],
)
def test_metadata_values_are_named_by_path(metadata, message):
    assert _message(check.metadata, "vectors[3].metadata", _struct(metadata)) == message


def test_metadata_nesting_is_bounded():
    deep: dict = {"leaf": 1}
    for _ in range(check.MAX_METADATA_DEPTH):
        deep = {"k": deep}
    message = _message(check.metadata, "metadata", _struct(deep))
    assert message.startswith("metadata.k.k.") and f"at most {check.MAX_METADATA_DEPTH} levels" in message


def test_ordinary_metadata_passes():
    check.metadata("metadata", _struct({"year": 1965, "tags": ["a", 2.5], "n": {"x": None, "y": True}}))


def test_texts_per_call_names_the_setting_and_batch_service():
    message = _message(check.embed_texts, "texts", ["a"] * 4, LIMITS)
    assert message.startswith("texts: has 4 texts; limits.embed_texts_per_call is 3")
    assert "BatchService.SubmitBatchJob" in message


def test_characters_per_text_names_the_item_and_the_setting():
    message = _message(check.embed_texts, "texts", ["ok", "x" * 11], LIMITS)
    assert message.startswith("texts[1]: is 11 characters; limits.embed_chars_per_text is 10")
    assert _message(check.embed_text, "query_text", " " * 3, LIMITS) == "query_text: must not be blank"
    check.embed_texts("texts", ["a", "b", "x" * 10], LIMITS)


def _filter(**kwargs) -> filter_pb2.Filter:
    return filter_pb2.Filter(**kwargs)


def test_a_filter_without_conditions_is_recognised_at_any_depth():
    empty_nested = filter_pb2.Condition(filter=_filter())
    field = filter_pb2.Condition(
        field=filter_pb2.FieldCondition(key="genre", match=filter_pb2.Match(keyword="scifi"))
    )
    assert not check.has_conditions(_filter())
    assert not check.has_conditions(_filter(must=[empty_nested], should=[empty_nested]))
    assert check.has_conditions(_filter(must=[empty_nested, field]))
    assert check.has_conditions(_filter(must_not=[filter_pb2.Condition(filter=_filter(should=[field]))]))
    has_id = filter_pb2.Condition(has_id=filter_pb2.HasIdCondition(ids=["a"]))
    assert check.has_conditions(_filter(should=[has_id]))
