"""gRPC status code → HTTP status (google/rpc/code.proto's mapping, as grpc-gateway's
runtime/errors.go has it), and the google.rpc.Status JSON every HTTP error body is."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

from citadel.adapters.errors import HTTP_STATUS, HttpError, http_status, status_json
from citadel.server.errors import ApiError

C = grpc.StatusCode

# One row per code, written out rather than read back from the table under test.
EXPECTED = [
    (C.OK, 200),
    (C.CANCELLED, 499),
    (C.UNKNOWN, 500),
    (C.INVALID_ARGUMENT, 400),
    (C.DEADLINE_EXCEEDED, 504),
    (C.NOT_FOUND, 404),
    (C.ALREADY_EXISTS, 409),
    (C.PERMISSION_DENIED, 403),
    (C.RESOURCE_EXHAUSTED, 429),
    (C.FAILED_PRECONDITION, 400),
    (C.ABORTED, 409),
    (C.OUT_OF_RANGE, 400),
    (C.UNIMPLEMENTED, 501),
    (C.INTERNAL, 500),
    (C.UNAVAILABLE, 503),
    (C.DATA_LOSS, 500),
    (C.UNAUTHENTICATED, 401),
]


def test_the_table_covers_every_grpc_status_code():
    assert set(HTTP_STATUS) == set(C)
    assert {code for code, _ in EXPECTED} == set(C)


@pytest.mark.parametrize(("code", "status"), EXPECTED, ids=[c.name for c, _ in EXPECTED])
def test_each_code_has_its_documented_http_status(code, status):
    assert HTTP_STATUS[code] == status
    assert http_status(ApiError(code, "x")) == status


# A caller's mistake is a 4xx on every protocol: never the 500 of a server fault.
CALLER_MISTAKES = [
    C.INVALID_ARGUMENT,
    C.NOT_FOUND,
    C.ALREADY_EXISTS,
    C.PERMISSION_DENIED,
    C.UNAUTHENTICATED,
    C.RESOURCE_EXHAUSTED,
    C.FAILED_PRECONDITION,
    C.OUT_OF_RANGE,
    C.ABORTED,
    C.CANCELLED,
]


@pytest.mark.parametrize("code", CALLER_MISTAKES, ids=[c.name for c in CALLER_MISTAKES])
def test_caller_mistakes_are_client_errors(code):
    assert 400 <= http_status(ApiError(code, "x")) < 500


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (C.UNIMPLEMENTED, 405),  # wrong method on a known path: 405, not the table's 501
        (C.NOT_FOUND, 404),  # no route
        (C.RESOURCE_EXHAUSTED, 413),  # body past limits.rest_body_bytes: 413, not the table's 429
    ],
)
def test_an_http_error_keeps_its_own_status_and_headers(code, status):
    error = HttpError(code, "why", status, {"allow": "GET"})
    assert http_status(error) == status
    assert error.code is code and error.message == "why"
    assert error.headers == {"allow": "GET"}
    assert HttpError(code, "why", status).headers == {}


@pytest.mark.parametrize(
    ("code", "message", "request_id"),
    [
        (C.NOT_FOUND, "collection 'films' not found", "req-1"),
        (C.INVALID_ARGUMENT, "limit: must be between 1 and 1000", None),
        (C.UNAVAILABLE, "", ""),
        (C.RESOURCE_EXHAUSTED, "naïve ünïcode ✓", "0123456789abcdef0123456789abcdef"),
    ],
)
def test_status_json_is_a_google_rpc_status(code, message, request_id):
    body = status_json(code, message, request_id)
    assert body["code"] == code.value[0]
    assert body["message"] == message
    # It parses as google.rpc.Status, details as Any of google.rpc.RequestInfo.
    status = json_format.ParseDict(body, status_pb2.Status())
    assert status.code == code.value[0] and status.message == message
    if request_id:
        assert len(status.details) == 1
        info = error_details_pb2.RequestInfo()
        assert status.details[0].Unpack(info)
        assert info.request_id == request_id
    else:
        assert body["details"] == [] and not status.details
