"""Query parameters → request fields (adapters/query.py), on the test-only EchoRequest, which
has every kind of field: scalars, 64-bit integers, enums, bytes, repeated, maps, nested
messages, a oneof, well-known types and wrappers."""

from __future__ import annotations

import base64
import datetime

import grpc
import numpy as np
import pytest
from google.protobuf import json_format

from citadel.adapters import query
from citadel.adapters.json_codec import JsonError
from tests.adapters.echo import echo_pb2

NO_OWNED: frozenset[str] = frozenset()


def request(query_string: str, owned: frozenset[str] = NO_OWNED, body_is_everything: bool = False):
    msg = echo_pb2.EchoRequest()
    query.apply(msg, query.parse(query_string.encode()), owned, body_is_everything)
    return msg


def as_dict(msg) -> dict:
    return json_format.MessageToDict(msg)


@pytest.mark.parametrize(
    ("query_string", "expected"),
    [
        ("id=a%20b", {"id": "a b"}),
        ("id=a+b", {"id": "a b"}),  # form encoding: + is a space
        ("id=", {}),  # blank kept, and blank is the default
        ("small=-5", {"small": -5}),
        ("small=2147483647", {"small": 2147483647}),
        ("unsigned_small=4294967295", {"unsignedSmall": 4294967295}),
        ("unsignedSmall=3", {"unsignedSmall": 3}),  # lowerCamelCase names too
        ("count=9007199254740993", {"count": "9007199254740993"}),  # exact past 2**53
        ("count=-9223372036854775808", {"count": "-9223372036854775808"}),
        ("big_count=18446744073709551615", {"bigCount": "18446744073709551615"}),
        ("count=1e3", {"count": "1000"}),  # proto3 JSON accepts exponents for integers
        ("ratio=0.25", {"ratio": 0.25}),
        ("ratio=Infinity", {"ratio": "Infinity"}),
        ("weight=1.5", {"weight": 1.5}),
        ("flag=true", {"flag": True}),
        ("flag=false", {}),
        ("payload=AAEC", {"payload": "AAEC"}),
        ("payload=_-8", {"payload": "/+8="}),  # URL-safe base64, unpadded
        ("color=COLOR_GREEN", {"color": "COLOR_GREEN"}),
        ("color=1", {"color": "COLOR_BLUE"}),
        ("color=7", {"color": 7}),  # proto3 enums are open
        ("tags=a&tags=b&tags=", {"tags": ["a", "b", ""]}),
        ("numbers=1&numbers=-2", {"numbers": ["1", "-2"]}),
        ("colors=COLOR_BLUE&colors=2", {"colors": ["COLOR_BLUE", "COLOR_GREEN"]}),
        ("embedding=0.5&embedding=-1", {"embedding": [0.5, -1.0]}),
        ("nested.text=hi&nested.big=5", {"nested": {"text": "hi", "big": "5"}}),
        ("nested.child.child.text=deep", {"nested": {"child": {"child": {"text": "deep"}}}}),
        ("labels[team]=search&labels[tier]=gold", {"labels": {"team": "search", "tier": "gold"}}),
        ("labels[a%5Bb%5D]=x", {"labels": {"a[b]": "x"}}),  # bracket inside the key, encoded
        ("labels[]=empty-key", {"labels": {"": "empty-key"}}),
        ("totals[x]=9223372036854775807", {"totals": {"x": "9223372036854775807"}}),
        ("choice_text=t", {"choiceText": "t"}),
        ("choiceNested.text=n", {"choiceNested": {"text": "n"}}),
        ("at=2024-01-02T03:04:05Z", {"at": "2024-01-02T03:04:05Z"}),
        ("at=2024-01-02T05:04:05%2B02:00", {"at": "2024-01-02T03:04:05Z"}),  # offset normalised
        ("ttl=1.5s", {"ttl": "1.500s"}),
        ("maybe_count=-3", {"maybeCount": "-3"}),
        ("maybe_text=", {"maybeText": ""}),  # a wrapper has presence: empty is set
        ("maybe_flag=false", {"maybeFlag": False}),
        ("optional_small=0", {"optionalSmall": 0}),  # so does `optional`
        ("float_encoding=base64&id=x", {"id": "x"}),  # adapter parameter: no field
    ],
)
def test_parameters_set_fields(query_string, expected):
    assert as_dict(request(query_string)) == expected


def test_presence_is_set_by_parameters_at_their_default():
    msg = request("maybe_flag=false&optional_small=0&nested.text=")
    assert msg.HasField("maybe_flag") and msg.maybe_flag.value is False
    assert msg.HasField("optional_small")
    assert msg.HasField("nested")  # selecting into a message sets it, as a JSON body's {} would


def test_timestamp_parameter_is_the_instant():
    at = request("at=2024-01-02T03:04:05.5Z").at.ToDatetime(tzinfo=datetime.UTC)
    assert at == datetime.datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=datetime.UTC)


def test_repeated_float_parameter_also_takes_base64_float32():
    values = np.array([1.0, -0.5, 3.25], dtype="<f4")
    encoded = base64.urlsafe_b64encode(values.tobytes()).decode()
    msg = request(f"embedding={encoded}&embedding=7")
    assert list(msg.embedding) == [1.0, -0.5, 3.25, 7.0]


@pytest.mark.parametrize(
    ("query_string", "where", "problem"),
    [
        ("nope=1", "'nope'", "EchoRequest has no field 'nope' (fields: id, small,"),
        ("=1", "''", "EchoRequest has no field ''"),
        ("nested.nope=1", "'nested.nope'", "Nested has no field 'nope'"),
        ("nested..text=1", "'nested..text'", "Nested has no field ''"),
        ("small=1&small=2", "'small'", "given more than once for a single field"),
        ("unsigned_small=1&unsignedSmall=2", "'unsignedSmall'", "given more than once"),
        ("nested.text=a&nested.text=b", "'nested.text'", "given more than once"),
        ("labels[k]=a&labels[k]=b", "'labels[k]'", "given more than once for the same map key"),
        ("labels=x", "'labels'", "'labels' is a map: write labels[KEY]=VALUE"),
        ("tags[0]=x", "'tags[0]'", "'tags' is not a map; [key] applies to maps only"),
        ("id.x=1", "'id.x'", "'id' has no fields to select with '.'"),
        ("at.seconds=1", "'at.seconds'", "'at' has no fields to select with '.'"),
        ("items.text=x", "'items.text'", "'items' has no fields to select with '.'"),
        ("items=x", "'items'", "'items' is a list of messages; send it in a body"),
        ("nested=x", "'nested'", "a Nested cannot be given as a URL value; send it in a body"),
        ("attributes=x", "'attributes'", "a Struct cannot be given as a URL value"),
        ("anything=1", "'anything'", "a Value cannot be given as a URL value"),
        ("nested_by_number[1]=x", "'nested_by_number[1]'", "a Nested cannot be given as a URL value"),
        ("nested_by_number[one]=x", "'nested_by_number[one]'", "expected an integer (int32)"),
        ("small=2147483648", "'small'", "2147483648 is out of range for int32"),
        ("unsigned_small=-1", "'unsigned_small'", "-1 is out of range for uint32"),
        ("big_count=18446744073709551616", "'big_count'", "out of range for uint64"),
        ("small=1.5", "'small'", "expected an integer (int32), got string '1.5'"),
        ("small=", "'small'", "expected an integer (int32), got string ''"),
        ("flag=yes", "'flag'", "expected true or false, got string 'yes'"),
        ("flag=True", "'flag'", "expected true or false"),
        ("weight=heavy", "'weight'", "expected a number (float)"),
        ("weight=1e39", "'weight'", "out of range for float"),
        ("ratio=nan", "'ratio'", "expected a number (double)"),  # only NaN, Infinity, -Infinity
        ("payload=***", "'payload'", "is not valid base64"),
        ("color=PURPLE", "'color'", "'PURPLE' is not a Color; expected one of COLOR_UNSPECIFIED,"),
        ("embedding=abc", "'embedding'", "must be a multiple of 4 bytes"),
        ("at=yesterday", "'at'", "invalid Timestamp"),
        ("ttl=5", "'ttl'", "invalid Duration"),
        ("maybe_count=x", "'maybe_count'", "expected an integer (int64)"),
        ("choice_text=a&choice_number=1", "'choice_number'", "only one of oneof 'choice' may be set"),
        ("choice_nested.text=a&choice_text=b", "'choice_text'", "'choice_nested' is too"),
        ("choice_text=b&choice_nested.text=a", "'choice_nested.text'", "'choice_text' is too"),
    ],
)
def test_a_parameter_that_does_not_map_is_invalid_argument_naming_it(query_string, where, problem):
    with pytest.raises(JsonError) as refused:
        request(query_string)
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.message.startswith(f"query parameter {where}: ")
    assert problem in refused.value.message


@pytest.mark.parametrize(
    ("owned", "query_string", "path"),
    [
        ({"id"}, "id=x", "id"),
        ({"nested"}, "nested.text=x", "nested"),  # inside a field the body owns
        ({"nested.text"}, "nested=x", "nested.text"),  # around a field the path owns
        ({"nested.text"}, "nested.text=x", "nested.text"),
        ({"choice_nested.text"}, "choiceNested.text=x", "choice_nested.text"),  # camelCase too
    ],
)
def test_a_parameter_may_not_touch_what_the_path_or_body_sets(owned, query_string, path):
    with pytest.raises(JsonError) as refused:
        request(query_string, frozenset(owned))
    assert refused.value.message.endswith(f"{path!r} is set by the URL path or body")


@pytest.mark.parametrize(
    ("owned", "query_string", "expected"),
    [
        ({"nested.text"}, "nested.big=5", {"nested": {"big": "5"}}),  # a sibling is free
        ({"id"}, "idx=1", None),  # a prefix of a name is not the field
        ({"nested"}, "nested_by_number[1]=x", None),
        ({"item"}, "items.text=x", None),
    ],
)
def test_fields_beside_the_owned_ones_are_not_owned(owned, query_string, expected):
    if expected is not None:
        assert as_dict(request(query_string, frozenset(owned))) == expected
        return
    with pytest.raises(JsonError) as refused:  # refused, but for what it is, not as owned
        request(query_string, frozenset(owned))
    assert "is set by the URL path or body" not in refused.value.message


def test_with_body_star_no_parameter_sets_a_field_but_float_encoding_is_allowed():
    with pytest.raises(JsonError) as refused:
        request("small=1", body_is_everything=True)
    assert refused.value.message == (
        "query parameter 'small': this method takes its fields in the JSON body, not the query"
    )
    assert as_dict(request("float_encoding=base64", body_is_everything=True)) == {}


@pytest.mark.parametrize(
    ("key", "names", "map_key"),
    [
        ("a", ["a"], None),
        ("a.b.c", ["a", "b", "c"], None),
        ("labels[k]", ["labels"], "k"),
        ("a.labels[k.j]", ["a", "labels"], "k.j"),  # dots inside the brackets belong to the key
        ("labels[]", ["labels"], ""),
        ("labels[k", ["labels[k"], None),  # unclosed: a name, which then names no field
        ("labels]", ["labels]"], None),
    ],
)
def test_split_key(key, names, map_key):
    assert query.split_key(key) == (names, map_key)


@pytest.mark.parametrize(
    ("raw", "pairs"),
    [
        (b"a=1&b=2", [("a", "1"), ("b", "2")]),
        (b"a=1;b=2", [("a", "1;b=2")]),  # ';' is not a separator (Python >= 3.10, as browsers)
        (b"a&b=", [("a", ""), ("b", "")]),
        (b"caf%C3%A9=%E2%9C%93", [("caf\u00e9", "\u2713")]),
        (b"", []),
    ],
)
def test_parse_query_string(raw, pairs):
    assert query.parse(raw) == pairs


def test_a_query_string_that_is_not_utf8_is_invalid_argument():
    with pytest.raises(JsonError) as refused:
        query.parse(b"id=\xff")
    assert refused.value.message == "query string: is not valid UTF-8"
