"""The proto3 JSON codec: its depth bounds (no input, however deep, exhausts the stack), and
edge cases both ways on the test-only EchoRequest, checked against json_format."""

from __future__ import annotations

import grpc
import orjson
import pytest
from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    json_format,
    struct_pb2,
    wrappers_pb2,
)

from citadel.adapters import json_codec
from citadel.adapters.json_codec import MAX_MESSAGE_DEPTH, JsonError
from citadel.server.servicers import validation
from citadel.server.servicers.validation import MAX_FILTER_DEPTH
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.adapters.echo import echo_pb2


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


# --- proto3 JSON edge cases, on the test-only EchoRequest (every kind of field) ---------------

E = echo_pb2.EchoRequest


def decoded(data: dict) -> dict:
    msg = E()
    json_codec.decode(data, msg)
    return json_format.MessageToDict(msg)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"big_count": "1", "small": 2}, {"bigCount": "1", "small": 2}),  # original names too
        ({"count": "9007199254740993"}, {"count": "9007199254740993"}),  # exact past 2**53
        ({"count": 5}, {"count": "5"}),
        ({"count": 1.0}, {"count": "1"}),
        ({"count": "1e3"}, {"count": "1000"}),  # exponents, as the proto3 JSON spec allows
        ({"count": "-9223372036854775808"}, {"count": "-9223372036854775808"}),
        ({"bigCount": "18446744073709551615"}, {"bigCount": "18446744073709551615"}),
        ({"unsignedSmall": 4294967295}, {"unsignedSmall": 4294967295}),
        ({"ratio": "NaN"}, {"ratio": "NaN"}),
        ({"ratio": "-Infinity"}, {"ratio": "-Infinity"}),
        ({"ratio": 1e308}, {"ratio": 1e308}),
        ({"weight": "1.5"}, {"weight": 1.5}),
        ({"flag": True}, {"flag": True}),
        ({"payload": "AAE"}, {"payload": "AAE="}),  # padding optional
        ({"payload": "_-8"}, {"payload": "/+8="}),  # URL-safe alphabet
        ({"color": "COLOR_GREEN"}, {"color": "COLOR_GREEN"}),
        ({"color": 1}, {"color": "COLOR_BLUE"}),
        ({"color": "2"}, {"color": "COLOR_GREEN"}),
        ({"color": 99}, {"color": 99}),  # open enum: an unknown number is kept
        ({"colors": ["COLOR_BLUE", 5]}, {"colors": ["COLOR_BLUE", 5]}),
        ({"numbers": [1, "2", 3.0]}, {"numbers": ["1", "2", "3"]}),
        ({"embedding": [1, 0.5, "NaN", "Infinity"]}, {"embedding": [1.0, 0.5, "NaN", "Infinity"]}),
        ({"embedding": "AACAPwAAAL8="}, {"embedding": [1.0, -0.5]}),  # base64 little-endian float32
        ({"embedding": ""}, {}),
        ({"labels": {"a": "1", "": "empty"}}, {"labels": {"a": "1", "": "empty"}}),
        ({"totals": {"a": "5", "b": -1}}, {"totals": {"a": "5", "b": "-1"}}),
        (
            {"nestedByNumber": {"-7": {"text": "x"}, "01": {}}},
            {"nestedByNumber": {"-7": {"text": "x"}, "1": {}}},
        ),
        ({"nested": {"child": {"child": {"big": "1"}}}}, {"nested": {"child": {"child": {"big": "1"}}}}),
        ({"items": [{}, {"text": "b"}]}, {"items": [{}, {"text": "b"}]}),
        ({"choiceText": None, "choiceNumber": "1"}, {"choiceNumber": "1"}),  # null is "not set"
        ({"choiceNested": {}}, {"choiceNested": {}}),
        ({"at": "2024-01-02T03:04:05.123+02:00"}, {"at": "2024-01-02T01:04:05.123Z"}),
        ({"at": None}, {}),
        ({"ttl": "-1.5s"}, {"ttl": "-1.500s"}),
        (
            {"attributes": {"a": [1, {"b": None}], "c": "x"}},
            {"attributes": {"a": [1.0, {"b": None}], "c": "x"}},
        ),
        ({"anything": None}, {"anything": None}),  # null IS a google.protobuf.Value
        ({"anything": [1, "a"]}, {"anything": [1.0, "a"]}),
        ({"maybeCount": "5"}, {"maybeCount": "5"}),
        ({"maybeCount": None}, {}),
        ({"maybeFlag": False}, {"maybeFlag": False}),  # presence kept at the default
        ({"maybeText": ""}, {"maybeText": ""}),
        ({"optionalSmall": 0}, {"optionalSmall": 0}),
        ({"small": 0, "id": "", "tags": []}, {}),  # defaults: nothing to write
    ],
)
def test_decode_accepts(data, expected):
    assert decoded(data) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"nope": 1}, "nope: unknown field; EchoRequest has fields id, small, unsignedSmall,"),
        ({"bigCount": "1", "big_count": "2"}, "big_count: given twice (also as 'bigCount')"),
        (
            {"choiceText": "a", "choiceNumber": "1"},
            "choiceNumber: only one of oneof 'choice' may be set; 'choiceText' is too",
        ),
        ({"id": 5}, "id: expected a string, got number 5"),
        ({"small": "x"}, "small: expected an integer (int32), got string 'x'"),
        ({"small": 1.5}, "small: expected an integer (int32), got number 1.5"),
        ({"small": True}, "small: expected an integer (int32), got boolean true"),
        ({"small": 2**31}, "small: 2147483648 is out of range for int32"),
        ({"unsignedSmall": -1}, "unsignedSmall: -1 is out of range for uint32"),
        ({"count": 2**63}, "count: 9223372036854775808 is out of range for int64"),
        ({"bigCount": "18446744073709551616"}, "bigCount: 18446744073709551616 is out of range for uint64"),
        ({"count": "0x10"}, "count: expected an integer (int64), got string '0x10'"),
        ({"ratio": "nan"}, "ratio: expected a number (double), got string 'nan'"),  # spelled NaN only
        ({"ratio": "1e400"}, "ratio: expected a number (double), got string '1e400'"),
        ({"ratio": [1]}, "ratio: expected a number (double), got an array"),
        ({"weight": 3.5e38}, "weight: 3.5e+38 is out of range for float"),
        ({"flag": "true"}, "flag: expected true or false, got string 'true'"),  # a body has real booleans
        ({"flag": 1}, "flag: expected true or false, got number 1"),
        ({"payload": "A"}, "payload: is not valid base64"),
        ({"payload": "AA E="}, "payload: is not valid base64"),
        (
            {"color": "PURPLE"},
            "color: 'PURPLE' is not a Color; expected one of COLOR_UNSPECIFIED, COLOR_BLUE,",
        ),
        ({"color": 2**31}, "color: 2147483648 is out of range for enum Color"),
        ({"color": True}, "color: expected a Color name, got boolean true"),
        ({"tags": "a"}, "tags: expected a JSON array, got string 'a'"),
        ({"tags": [1]}, "tags[0]: expected a string, got number 1"),
        (
            {"embedding": {"a": 1}},
            "embedding: expected a JSON array or a base64 string of little-endian float32",
        ),
        ({"embedding": [1, 1e39]}, "embedding[1]: 1e+39 is out of range for float"),
        ({"embedding": [True]}, "embedding[0]: expected a number (float), got boolean true"),
        ({"embedding": "AAE="}, "embedding: base64 float32 data must be a multiple of 4 bytes, got 2"),
        ({"labels": []}, "labels: expected a JSON object (a map), got an array"),
        ({"labels": {"a": 1}}, "labels['a']: expected a string, got number 1"),
        ({"nestedByNumber": {"x": {}}}, "nestedByNumber['x']: expected an integer (int32), got string 'x'"),
        ({"nestedByNumber": {"1": 5}}, "nestedByNumber['1']: expected a JSON object (Nested), got number 5"),
        ({"nested": "x"}, "nested: expected a JSON object (Nested), got string 'x'"),
        (
            {"nested": {"child": {"nope": 1}}},
            "nested.child.nope: unknown field; Nested has fields text, big, child",
        ),
        ({"items": [{}, {"big": "x"}]}, "items[1].big: expected an integer (int64), got string 'x'"),
        ({"at": "2024-01-02 03:04:05Z"}, "at: invalid Timestamp: "),
        ({"at": 5}, "at: invalid Timestamp: "),
        ({"ttl": "5"}, "ttl: invalid Duration: "),
        ({"ttl": "315576000001s"}, "ttl: invalid Duration: "),  # past the 10,000-year bound
        ({"attributes": []}, "attributes: invalid Struct: "),
        ({"maybeFlag": "true"}, "maybeFlag: invalid BoolValue: "),
        # json_format raises Python's own TypeError for these: they must still be 400s
        ({"maybeText": 5}, "maybeText: invalid StringValue: got number 5"),
        ({"maybeText": {"a": 1}}, "maybeText: invalid StringValue: got an object"),
        ({"maybeCount": [1]}, "maybeCount: invalid Int64Value: got an array"),
    ],
)
def test_decode_refuses_naming_the_field(data, message):
    with pytest.raises(JsonError) as refused:
        json_codec.decode(data, E())
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.message.startswith(message)


@pytest.mark.parametrize(
    ("cls", "data", "expected"),
    [
        (field_mask_pb2.FieldMask, "a.b,cD", {"paths": ["a.b", "c_d"]}),
        (any_pb2.Any, {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "2s"}, "2s"),
        (empty_pb2.Empty, {}, None),
        (struct_pb2.ListValue, [1, "a", None], None),
        (wrappers_pb2.UInt64Value, "18446744073709551615", None),
        (wrappers_pb2.BytesValue, "AAE=", None),
    ],
)
def test_decode_other_well_known_types(cls, data, expected):
    msg = cls()
    json_codec.decode(data, msg)
    if cls is field_mask_pb2.FieldMask:
        assert list(msg.paths) == expected["paths"]
    elif cls is any_pb2.Any:
        inner = duration_pb2.Duration()
        assert msg.Unpack(inner) and inner.ToJsonString() == expected
    assert json_format.MessageToDict(msg) == json_format.MessageToDict(json_format.ParseDict(data, cls()))


@pytest.mark.parametrize(
    ("cls", "data"),
    [
        (any_pb2.Any, {"@type": "type.googleapis.com/google.protobuf.Duration"}),  # no "value"
        (any_pb2.Any, {"@type": 5}),
        (any_pb2.Any, {"@type": "type.googleapis.com/no.such.Type", "value": 1}),
        (field_mask_pb2.FieldMask, 5),
        (wrappers_pb2.UInt32Value, -1),
        (wrappers_pb2.FloatValue, "fast"),
        (empty_pb2.Empty, {"a": 1}),
    ],
)
def test_bad_well_known_values_are_400s_not_500s(cls, data):
    with pytest.raises(JsonError) as refused:
        json_codec.decode(data, cls(), "field")
    assert refused.value.message.startswith(f"field: invalid {cls.DESCRIPTOR.name}: ")


def full_request() -> echo_pb2.EchoRequest:
    msg = E(
        id="x",
        small=-1,
        unsigned_small=2**32 - 1,
        count=-(2**63),
        big_count=2**64 - 1,
        ratio=0.1,
        weight=0.1,
        flag=True,
        payload=b"\x00\xff\xfe",
        color=echo_pb2.COLOR_GREEN,
        tags=["a", ""],
        numbers=[2**53 + 1],
        embedding=[0.1, -2.5, 1e-7],
        labels={"k": "v"},
        totals={"t": 2**62},
        colors=[echo_pb2.COLOR_BLUE, 7],
        choice_number=3,
        optional_small=0,
    )
    msg.nested_by_number[-4].text = "n"
    msg.nested.child.big = 5
    msg.items.add(text="i")
    msg.at.FromJsonString("2024-01-02T03:04:05.5Z")
    msg.ttl.FromJsonString("3.000000001s")
    msg.attributes.update({"year": 2020, "r": 2.5, "tags": ["a"], "n": None})
    msg.anything.string_value = "s"
    msg.maybe_count.value = 0
    msg.maybe_text.value = ""
    msg.maybe_flag.value = False
    return msg


def test_encode_matches_json_format_and_decodes_back():
    msg = full_request()
    ours = orjson.loads(json_codec.dumps(json_codec.to_json(msg)))
    reference = json_format.MessageToDict(msg)
    # Struct numbers: whole ones are written as integers (2020, not 2020.0); equal as JSON numbers.
    assert ours == reference
    assert ours["attributes"]["year"] == 2020 and isinstance(ours["attributes"]["year"], int)
    again = E()
    json_codec.decode(ours, again)
    assert again == msg


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        (E(count=5, big_count=6, small=7), {"count": "5", "bigCount": "6", "small": 7}),  # 64-bit: strings
        (E(weight=0.1), b'{"weight":0.1}'),  # float32 written with its shortest digits, not 0.10000000149
        (E(embedding=[0.1, 0.2]), b'{"embedding":[0.1,0.2]}'),
        (E(ratio=float("nan"), weight=float("-inf")), {"ratio": "NaN", "weight": "-Infinity"}),
        (E(embedding=[1.0, float("nan")]), {"embedding": [1.0, "NaN"]}),
        (E(color=42), {"color": 42}),  # unknown enum number written as a number
        (E(payload=b"\xfb\xff"), {"payload": "+/8="}),  # standard base64 alphabet
        (E(maybe_flag=wrappers_pb2.BoolValue(value=False)), {"maybeFlag": False}),
        (E(anything=struct_pb2.Value(null_value=0)), {"anything": None}),
        (
            E(attributes=struct_pb2.Struct(fields={"big": struct_pb2.Value(number_value=2.0**53)})),
            {"attributes": {"big": 2.0**53}},
        ),
        (E(), {}),
    ],
)
def test_encode(msg, expected):
    raw = json_codec.dumps(json_codec.to_json(msg))
    if isinstance(expected, bytes):
        assert raw == expected
    else:
        assert orjson.loads(raw) == expected


def test_floats_base64_round_trips_through_the_decoder():
    msg = E(embedding=[0.1, -2.5, 3.4e38, float("inf")])
    value = json_codec.to_json(msg, floats_base64=True)
    assert isinstance(value["embedding"], str)
    again = E()
    json_codec.decode(value, again)
    assert list(again.embedding) == list(msg.embedding)
