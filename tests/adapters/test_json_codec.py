"""The JSON decoder's depth bounds: no input, however deep, exhausts the stack."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2

from citadel.adapters import json_codec
from citadel.adapters.json_codec import MAX_MESSAGE_DEPTH, JsonError
from citadel.server.servicers import validation
from citadel.server.servicers.validation import MAX_FILTER_DEPTH
from citadel.vector.v1 import vector_service_pb2 as pb


def nested_filter(levels: int) -> dict:
    inner: dict = {"must": [{"field": {"key": "year", "match": {"integer": 1}}}]}
    for _ in range(levels - 1):
        inner = {"must": [{"filter": inner}]}
    return inner


def test_filters_at_the_limit_decode_and_deeper_ones_get_the_validators_words():
    msg = pb.SearchVectorsRequest()
    json_codec.decode({"filter": nested_filter(MAX_FILTER_DEPTH + 1)}, msg)  # depth 0..8
    validation.filter_("filter", msg.filter)  # and the validator agrees
    for levels in (MAX_FILTER_DEPTH + 2, 300, 900):  # 900: far past Python's recursion limit
        with pytest.raises(JsonError) as refused:
            json_codec.decode({"filter": nested_filter(levels)}, pb.SearchVectorsRequest())
        path = "filter" + ".must[0].filter" * (MAX_FILTER_DEPTH + 1)
        assert refused.value.message == f"{path}: filters nest at most {MAX_FILTER_DEPTH} levels deep"
    too_deep = pb.SearchVectorsRequest()
    too_deep.filter.CopyFrom(_proto_filter(MAX_FILTER_DEPTH + 2))
    with pytest.raises(Exception) as by_validator:
        validation.filter_("filter", too_deep.filter)
    assert str(by_validator.value) == refused.value.message


def _proto_filter(levels: int):
    top = pb.SearchVectorsRequest().filter
    current = top
    for _ in range(levels - 1):
        current = current.must.add().filter
    current.must.add().field.key = "year"
    return top


def test_any_self_nesting_message_is_capped_with_its_path():
    # DescriptorProto contains itself (nested_type): a message our contracts do not limit.
    value: dict = {"name": "leaf"}
    for _ in range(500):
        value = {"nestedType": [value]}
    with pytest.raises(JsonError) as refused:
        json_codec.decode(value, descriptor_pb2.DescriptorProto())
    assert (
        refused.value.message
        == (".nestedType[0]" * (MAX_MESSAGE_DEPTH - 1)).lstrip(".")
        + f".nestedType[0]: messages nest more than {MAX_MESSAGE_DEPTH} levels deep"
    )


def test_a_deep_struct_is_a_400_not_a_recursion_error():
    value: dict = {"x": 1}
    for _ in range(2000):
        value = {"x": value}
    with pytest.raises(JsonError):
        json_codec.decode(
            {"vectors": [{"id": "a", "embedding": [1], "metadata": value}]}, pb.UpsertVectorsRequest()
        )
