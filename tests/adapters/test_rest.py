"""REST/JSON transcoding rules, end to end against a real gateway serving the test-only
EchoService (which no adapter code knows): templates, bodies, query parameters, the proto3
JSON mapping, errors, headers, deadlines, request ids and vector encodings."""

from __future__ import annotations

import base64
import socket

import grpc
import numpy as np
import pytest

from citadel.adapters.errors import HTTP_STATUS, REQUEST_INFO_TYPE
from tests.adapters.conftest import MAX_MESSAGE_BYTES


def echo(http, body, **kwargs) -> dict:
    response = http.post("/v1/echo:run", json=body, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def error(response, status: int) -> str:
    assert response.status_code == status, response.text
    payload = response.json()
    assert set(payload) == {"code", "message", "details"}
    assert payload["details"][0]["@type"] == REQUEST_INFO_TYPE
    assert payload["details"][0]["requestId"] == response.headers["x-request-id"]
    return payload["message"]


# -- proto3 JSON ---------------------------------------------------------------------------


def test_every_json_type_round_trips_in_canonical_form(http):
    sent = {
        "id": "x",
        "small": -3,
        "unsigned_small": 4000000000,
        "count": 12,
        "bigCount": "18446744073709551615",
        "ratio": 0.25,
        "weight": 1.5,
        "flag": True,
        "payload": base64.b64encode(b"\x00\xffbytes").decode(),
        "color": "COLOR_GREEN",
        "tags": ["a", "b"],
        "numbers": [1, "-9007199254740993"],
        "embedding": [0.1, 2, -3.5],
        "labels": {"team": "search"},
        "nestedByNumber": {"7": {"text": "seven", "child": {"big": "1"}}},
        "nested": {"text": "hi"},
        "items": [{"text": "i1"}, {}],
        "choiceNested": {"text": "chosen"},
        "at": "2024-05-01T12:00:00.5Z",
        "ttl": "1.5s",
        "attributes": {"year": 2020, "ratio": 0.5, "tags": ["x"], "deep": {"ok": True, "none": None}},
        "anything": [1, "two"],
        "maybeCount": "0",
        "maybeText": "",
        "maybeFlag": False,
        "optionalSmall": 0,
        "totals": {"t": "9"},
        "colors": ["COLOR_BLUE", 2],
    }
    got = echo(http, sent)["request"]
    assert got == {
        "id": "x",
        "small": -3,
        "unsignedSmall": 4000000000,
        "count": "12",
        "bigCount": "18446744073709551615",
        "ratio": 0.25,
        "weight": 1.5,
        "flag": True,
        "payload": sent["payload"],
        "color": "COLOR_GREEN",
        "tags": ["a", "b"],
        "numbers": ["1", "-9007199254740993"],
        "embedding": [0.1, 2.0, -3.5],
        "labels": {"team": "search"},
        "nestedByNumber": {"7": {"text": "seven", "child": {"big": "1"}}},
        "nested": {"text": "hi"},
        "items": [{"text": "i1"}, {}],
        "choiceNested": {"text": "chosen"},
        "at": "2024-05-01T12:00:00.500Z",
        "ttl": "1.500s",
        "attributes": {"year": 2020, "ratio": 0.5, "tags": ["x"], "deep": {"ok": True, "none": None}},
        "anything": [1, "two"],
        # Fields with presence keep their default values; others drop them.
        "maybeCount": "0",
        "maybeText": "",
        "maybeFlag": False,
        "optionalSmall": 0,
        "totals": {"t": "9"},
        "colors": ["COLOR_BLUE", "COLOR_GREEN"],
    }


def test_defaults_and_nulls_are_omitted(http):
    got = echo(http, {"id": "", "small": 0, "flag": False, "nested": None, "tags": None})["request"]
    assert got == {}


def test_special_floats_and_open_enums(http):
    got = echo(http, {"weight": "NaN", "ratio": "-Infinity", "embedding": ["Infinity", 1], "color": 7})[
        "request"
    ]
    assert got["weight"] == "NaN" and got["ratio"] == "-Infinity"
    assert got["embedding"] == ["Infinity", 1.0]
    assert got["color"] == 7  # proto3 enums are open: unknown numbers survive


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"small": "abc"}, "small: expected an integer (int32), got string 'abc'"),
        ({"small": 2**31}, "small: 2147483648 is out of range for int32"),
        ({"unsignedSmall": -1}, "unsignedSmall: -1 is out of range for uint32"),
        ({"count": 1.5}, "count: expected an integer (int64), got number 1.5"),
        ({"flag": "yes"}, "flag: expected true or false, got string 'yes'"),
        (
            {"color": "PURPLE"},
            "color: 'PURPLE' is not a Color; expected one of COLOR_UNSPECIFIED, COLOR_BLUE",
        ),
        ({"tags": "a"}, "tags: expected a JSON array, got string 'a'"),
        ({"tags": [1]}, "tags[0]: expected a string, got number 1"),
        ({"payload": "!!"}, "payload: is not valid base64"),
        ({"embedding": [1, "x"]}, "embedding[1]: expected a number (float), got string 'x'"),
        ({"embedding": [1e39]}, "embedding[0]: 1e+39 is out of range for float"),
        ({"weight": True}, "weight: expected a number (float), got boolean true"),
        ({"at": "yesterday"}, "at: invalid Timestamp"),
        ({"nested": 5}, "nested: expected a JSON object (Nested), got number 5"),
        ({"nested": {"child": {"big": "x"}}}, "nested.child.big: expected an integer (int64)"),
        ({"labels": {"a": 1}}, "labels['a']: expected a string, got number 1"),
        ({"nestedByNumber": {"x": {}}}, "nestedByNumber['x']: expected an integer (int32)"),
        ({"items": [{}, {"bogus": 1}]}, "items[1].bogus: unknown field; Nested has fields text, big, child"),
    ],
)
def test_wrong_types_are_400_naming_the_field(http, body, problem):
    message = error(http.post("/v1/echo:run", json=body), 400)
    assert message.startswith(problem), message


def test_unknown_field_is_rejected_with_the_known_fields(http):
    message = error(http.post("/v1/echo:run", json={"id": "x", "colour": "blue"}), 400)
    assert message.startswith("colour: unknown field; EchoRequest has fields id, small, unsignedSmall")


def test_original_and_camel_case_names_are_both_accepted_but_not_together(http):
    assert echo(http, {"big_count": "5", "maybe_text": "t"})["request"] == {"bigCount": "5", "maybeText": "t"}
    message = error(http.post("/v1/echo:run", json={"bigCount": "1", "big_count": "2"}), 400)
    assert message == "big_count: given twice (also as 'bigCount')"


def test_oneof_allows_at_most_one_member(http):
    message = error(http.post("/v1/echo:run", json={"choiceText": "a", "choiceNumber": "1"}), 400)
    assert message == "choiceNumber: only one of oneof 'choice' may be set; 'choiceText' is too"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"id": "x"', "request body is not valid JSON: unexpected end of data"),
        (
            b"{'id': 1}",
            "request body is not valid JSON: unexpected character, expected a string key: line 1 column 2",
        ),
        (b"[1, 2]", "expected a JSON object (EchoRequest), got an array"),
    ],
)
def test_malformed_json_is_400_saying_what_is_wrong(http, body, problem):
    response = http.post("/v1/echo:run", content=body, headers={"content-type": "application/json"})
    assert error(response, 400).startswith(problem)


# -- HTTP rules ------------------------------------------------------------------------------


def test_query_parameters_fill_nested_repeated_map_and_well_known_fields(http):
    params = [
        ("tags", "a"),
        ("tags", "b"),
        ("nested.text", "hi"),
        ("nested.child.big", "7"),
        ("labels[team]", "search"),
        ("totals[t]", "9"),
        ("color", "COLOR_BLUE"),
        ("colors", "COLOR_BLUE"),
        ("colors", "2"),
        ("count", "-5"),
        ("flag", "true"),
        ("unsigned_small", "4"),
        ("embedding", "1.5"),
        ("embedding", "2"),
        ("at", "2024-01-02T03:04:05Z"),
        ("ttl", "2s"),
        ("maybeCount", "3"),
        ("payload", base64.urlsafe_b64encode(b"\xfb\xff").decode()),
    ]
    response = http.get("/v1/echo/the%20id", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["request"] == {
        "id": "the id",
        "count": "-5",
        "unsignedSmall": 4,
        "flag": True,
        "payload": base64.b64encode(b"\xfb\xff").decode(),
        "color": "COLOR_BLUE",
        "tags": ["a", "b"],
        "embedding": [1.5, 2.0],
        "labels": {"team": "search"},
        "nested": {"text": "hi", "child": {"big": "7"}},
        "at": "2024-01-02T03:04:05Z",
        "ttl": "2s",
        "maybeCount": "3",
        "totals": {"t": "9"},
        "colors": ["COLOR_BLUE", "COLOR_GREEN"],
    }


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ([("bogus", "1")], "query parameter 'bogus': EchoRequest has no field 'bogus'"),
        (
            [("small", "1"), ("small", "2")],
            "query parameter 'small': given more than once for a single field",
        ),
        ([("id", "other")], "query parameter 'id': 'id' is set by the URL path or body"),
        ([("items", "x")], "query parameter 'items': 'items' is a list of messages; send it in a body"),
        ([("labels", "x")], "query parameter 'labels': 'labels' is a map: write labels[KEY]=VALUE"),
        ([("tags[x]", "1")], "query parameter 'tags[x]': 'tags' is not a map"),
        ([("attributes", "{}")], "query parameter 'attributes': a Struct cannot be given as a URL value"),
        ([("small.x", "1")], "query parameter 'small.x': 'small' has no fields to select with '.'"),
        ([("flag", "maybe")], "query parameter 'flag': expected true or false"),
        ([("choiceText", "a"), ("choiceNumber", "1")], "query parameter 'choiceNumber': only one of oneof"),
    ],
)
def test_bad_query_parameters_are_400_naming_the_parameter(http, params, problem):
    assert error(http.get("/v1/echo/x", params=params), 400).startswith(problem)


def test_query_parameters_are_refused_when_the_body_takes_every_field(http):
    message = error(http.post("/v1/echo:run?small=1", json={}), 400)
    assert message == "query parameter 'small': this method takes its fields in the JSON body, not the query"


def test_named_body_field_with_path_and_query(http):
    response = http.put("/v1/echo/e1/nested?small=2", json={"text": "in body", "big": "5"})
    assert response.status_code == 200, response.text
    assert response.json()["request"] == {"id": "e1", "small": 2, "nested": {"text": "in body", "big": "5"}}
    message = error(http.put("/v1/echo/e1/nested?nested.text=x", json={}), 400)
    assert message == "query parameter 'nested.text': 'nested' is set by the URL path or body"


def test_nested_path_field_wins_over_the_body(http):
    response = http.patch("/v1/shelves/s1/books/b2", json={"name": "ignored", "title": "T", "pages": 3})
    assert response.json() == {"name": "shelves/s1/books/b2", "title": "T", "pages": 3}


def test_multi_segment_templates(http):
    assert http.get("/v1/shelves/s1/books/b1").json()["name"] == "shelves/s1/books/b1"
    assert http.get("/v1/archive/shelves/a/books/b:read").json()["name"] == "shelves/a/books/b"
    # An encoded slash inside a multi-segment variable stays encoded (http.proto rule).
    message = error(http.get("/v1/archive/a%2Fb/c:read"), 400)
    assert message == "name: 'a%2Fb/c' is not shelves/*/books/*"
    error(http.get("/v1/shelves/s1"), 404)


def test_unnamed_wildcard_and_empty_response(http):
    response = http.delete("/v1/shelves/anything/books/b1")
    assert response.status_code == 200 and response.json() == {}


def test_response_body_selects_one_field(http):
    assert http.get("/v1/reflect/r1?small=3").json() == {"id": "r1", "small": 3}


def test_additional_bindings_serve_the_same_rpc(http):
    via_get = http.get("/v1/echo/same?small=1").json()["request"]
    via_post = echo(http, {"id": "same", "small": 1})["request"]
    assert via_get == via_post == {"id": "same", "small": 1}


def test_unknown_path_is_404_and_wrong_method_is_405_with_allow(http):
    assert error(http.get("/v1/nothing/here"), 404) == "no route for GET /v1/nothing/here"
    response = http.post("/v1/echo/abc", json={})
    assert error(response, 405) == "method POST is not allowed on /v1/echo/abc; allowed: GET"
    assert response.headers["allow"] == "GET"
    assert response.json()["code"] == grpc.StatusCode.UNIMPLEMENTED.value[0]


def test_body_on_a_method_without_one_is_400(http):
    response = http.request("GET", "/v1/echo/x", content=b'{"small": 1}')
    assert error(response, 400) == "GET /v1/echo/{id} takes no request body"


def test_oversize_body_is_413_by_content_length_and_while_streaming(echo_gateway, http):
    big = b'{"id": "' + b"x" * MAX_MESSAGE_BYTES + b'"}'
    message = error(http.post("/v1/echo:run", content=big), 413)
    assert message == f"request body is larger than limits.rest_body_bytes ({MAX_MESSAGE_BYTES} bytes)"
    assert (
        http.post("/v1/echo:run", content=big).json()["code"] == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    )

    def chunks():  # chunked: no Content-Length, so the limit applies while reading
        for i in range(0, len(big), 65536):
            yield big[i : i + 65536]

    error(http.post("/v1/echo:run", content=chunks()), 413)


# -- headers, deadlines, request ids -----------------------------------------------------------


def test_headers_become_metadata(http):
    headers = {
        "Authorization": "Bearer token",
        "X-Tenant": "t1",
        "Grpc-Metadata-Trace": "abc",
        "User-Agent": "tests",
    }
    got = echo(http, {}, headers=headers)
    assert got["metadata"]["authorization"] == "Bearer token"
    assert got["metadata"]["x-tenant"] == "t1"
    assert got["metadata"]["trace"] == "abc"
    assert "user-agent" not in got["metadata"]
    assert got["protocol"] == "rest"


def test_timeout_headers_set_the_deadline(http):
    assert "deadlineSeconds" not in echo(http, {})
    assert 1.0 < echo(http, {}, headers={"X-Request-Timeout": "2"})["deadlineSeconds"] <= 2.0
    assert 1.0 < echo(http, {}, headers={"grpc-timeout": "1500m"})["deadlineSeconds"] <= 1.5
    both = echo(http, {}, headers={"grpc-timeout": "1S", "X-Request-Timeout": "30"})
    assert both["deadlineSeconds"] <= 1.0


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"grpc-timeout": "soon"}, "grpc-timeout header: 'soon' is not a gRPC timeout"),
        ({"X-Request-Timeout": "-1"}, "X-Request-Timeout header: '-1' is not a positive number of seconds"),
    ],
)
def test_bad_timeout_headers_are_400(http, headers, problem):
    assert error(http.post("/v1/echo:run", json={}, headers=headers), 400).startswith(problem)


def test_deadline_exceeded_is_504(http):
    response = http.post("/v1/raise", json={"sleepMs": 3000}, headers={"X-Request-Timeout": "0.2"})
    assert error(response, 504) == "deadline exceeded"


def test_request_id_is_returned_and_an_incoming_one_honoured(http):
    response = http.post("/v1/echo:run", json={}, headers={"X-Request-Id": "my-id-1"})
    assert response.headers["x-request-id"] == "my-id-1"
    assert response.json()["requestId"] == "my-id-1"
    generated = http.post("/v1/echo:run", json={})
    assert len(generated.headers["x-request-id"]) == 32
    assert generated.json()["requestId"] == generated.headers["x-request-id"]
    assert http.get("/v1/nothing").headers["x-request-id"]


def test_response_metadata_becomes_headers(http):
    assert http.post("/v1/echo:run", json={}).headers["x-echo-protocol"] == "rest"


@pytest.mark.parametrize(
    "code", [c for c in grpc.StatusCode if c != grpc.StatusCode.OK], ids=lambda c: c.name
)
def test_every_status_code_maps_to_its_http_status(http, code):
    response = http.post("/v1/raise", json={"code": code.name, "message": f"failed with {code.name}"})
    assert error(response, HTTP_STATUS[code]) == f"failed with {code.name}"
    assert response.json()["code"] == code.value[0]


# -- vectors -----------------------------------------------------------------------------------


def test_embeddings_as_base64_float32_both_ways(http):
    values = np.array([0.1, -2.5, 3.0e-8, 1234.5678], dtype="<f4")
    encoded = base64.b64encode(values.tobytes()).decode()
    as_json = echo(http, {"embedding": encoded})["request"]["embedding"]
    assert np.array_equal(np.array(as_json, dtype=np.float32), values)
    for kwargs in ({"params": {"float_encoding": "base64"}}, {"headers": {"X-Float-Encoding": "base64"}}):
        response = http.post("/v1/echo:run", json={"embedding": as_json}, **kwargs)
        assert response.json()["request"]["embedding"] == encoded


def test_bad_float_encodings_are_400(http):
    message = error(http.post("/v1/echo:run", json={"embedding": "AAAAAAA"}), 400)
    assert message == "embedding: base64 float32 data must be a multiple of 4 bytes, got 5"
    message = error(http.post("/v1/echo:run?float_encoding=hex", json={}), 400)
    assert message == "float_encoding: 'hex' is not one of 'json', 'base64'"
    # The document's enum has no empty value (it was taken as json).
    message = error(http.post("/v1/echo:run?float_encoding=", json={}), 400)
    assert message == "float_encoding: '' is not one of 'json', 'base64'"


def test_float32_values_are_written_with_the_shortest_exact_digits(http):
    assert echo(http, {"weight": 0.1, "embedding": [0.1, 1 / 3]})["request"] == {
        "weight": 0.1,
        "embedding": [0.1, 0.33333334],
    }


def test_raw_socket_request_with_huge_declared_length_is_refused_before_reading(echo_gateway):
    with socket.create_connection(("127.0.0.1", echo_gateway.http_port), timeout=10) as s:
        s.sendall(
            b"POST /v1/echo:run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 999999999\r\n\r\n{}"
        )
        head = s.recv(4096).decode()
    assert head.startswith("HTTP/1.1 413")
