"""HTTP headers → the protocol-neutral Call (adapters/metadata.py): which headers become
metadata, how grpc-timeout and X-Request-Timeout become a deadline, and the request id."""

from __future__ import annotations

import re
import time

import grpc
import pytest

from citadel.adapters.metadata import (
    MAX_REQUEST_ID,
    deadline_of,
    header_map,
    http_call,
    metadata_of,
    request_id_of,
)
from citadel.server.errors import ApiError
from citadel.server.methods import method_specs
from tests.adapters.echo import SERVICE

ECHO = next(s for s in method_specs([SERVICE]) if s.name == "Echo")
NOW = 1000.0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([(b"Authorization", b"Bearer k")], {"authorization": "Bearer k"}),
        ([(b"X-A", b"1"), (b"x-a", b"2"), (b"X-a", b"3")], {"x-a": "1, 2, 3"}),  # joined, in order
        ([(b"x-name", "caf\u00e9".encode("latin-1"))], {"x-name": "caf\u00e9"}),  # latin-1, as HTTP/1.1
        (
            [(b"Content-Type", b"application/json"), (b"ACCEPT", b"*/*")],
            {"content-type": "application/json", "accept": "*/*"},
        ),
        ([], {}),
    ],
)
def test_header_map_lower_cases_names_and_joins_repeats(raw, expected):
    assert header_map(raw) == expected


@pytest.mark.parametrize(
    ("headers", "metadata"),
    [
        ({"authorization": "Bearer k"}, {"authorization": "Bearer k"}),
        ({"cache-control": "no-cache"}, {"cache-control": "no-cache"}),
        ({"x-api-key": "k", "x-request-id": "r1"}, {"x-api-key": "k", "x-request-id": "r1"}),
        ({"grpc-metadata-tenant-hint": "acme"}, {"tenant-hint": "acme"}),  # prefix removed
        ({"traceparent": "00-ab-cd-01"}, {}),  # not x-*: the tracing layer reads it from headers
        (
            {"content-type": "application/json", "accept": "*/*", "host": "localhost", "cookie": "a=b"},
            {},
        ),
        ({"grpc-timeout": "1S", "user-agent": "curl"}, {}),
        ({"xylophone": "no dash"}, {}),  # only the `x-` prefix, not every name starting with x
    ],
)
def test_metadata_of_keeps_auth_cache_control_x_and_grpc_metadata_headers(headers, metadata):
    assert metadata_of(headers) == metadata


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"grpc-timeout": "1H"}, 3600.0),
        ({"grpc-timeout": "2M"}, 120.0),
        ({"grpc-timeout": "5S"}, 5.0),
        ({"grpc-timeout": "250m"}, 0.25),
        ({"grpc-timeout": "1500u"}, 0.0015),
        ({"grpc-timeout": "2000000n"}, 0.002),
        ({"grpc-timeout": "99999999S"}, 99999999.0),  # 8 digits: gRPC's largest
        ({"grpc-timeout": " 5S "}, 5.0),  # surrounding space tolerated
        ({"grpc-timeout": "0m"}, 0.0),  # already expired: the chain answers DEADLINE_EXCEEDED
        ({"x-request-timeout": "2"}, 2.0),
        ({"x-request-timeout": "0.5"}, 0.5),
        ({"x-request-timeout": "1e-3"}, 0.001),
        ({"x-request-timeout": " 3 "}, 3.0),
        ({"grpc-timeout": "10S", "x-request-timeout": "2"}, 2.0),  # the sooner wins
        ({"grpc-timeout": "100m", "x-request-timeout": "2"}, 0.1),
        ({}, None),
        ({"x-other": "5"}, None),
    ],
)
def test_deadline_from_grpc_timeout_or_x_request_timeout(headers, seconds):
    deadline = deadline_of(headers, now=NOW)
    if seconds is None:
        assert deadline is None
    else:
        assert deadline == pytest.approx(NOW + seconds)


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ({"grpc-timeout": "5"}, "grpc-timeout header: '5'"),  # no unit
        ({"grpc-timeout": "5s"}, "grpc-timeout header: '5s'"),  # units are case-sensitive
        ({"grpc-timeout": "1.5S"}, "grpc-timeout header: '1.5S'"),
        ({"grpc-timeout": "-1S"}, "grpc-timeout header: '-1S'"),
        ({"grpc-timeout": "123456789S"}, "grpc-timeout header: '123456789S'"),  # 9 digits
        ({"grpc-timeout": ""}, "grpc-timeout header: ''"),
        ({"grpc-timeout": "S"}, "grpc-timeout header: 'S'"),
        ({"x-request-timeout": "soon"}, "X-Request-Timeout header: 'soon'"),
        ({"x-request-timeout": "0"}, "X-Request-Timeout header: '0'"),
        ({"x-request-timeout": "-2"}, "X-Request-Timeout header: '-2'"),
        ({"x-request-timeout": "nan"}, "X-Request-Timeout header: 'nan'"),
        ({"x-request-timeout": "inf"}, "X-Request-Timeout header: 'inf'"),
        ({"x-request-timeout": "1e400"}, "X-Request-Timeout header: '1e400'"),  # overflows to inf
        ({"x-request-timeout": ""}, "X-Request-Timeout header: ''"),
        # A valid one does not excuse an invalid other.
        ({"grpc-timeout": "5S", "x-request-timeout": "later"}, "X-Request-Timeout header: 'later'"),
        ({"grpc-timeout": "5 S", "x-request-timeout": "5"}, "grpc-timeout header: '5 S'"),
    ],
)
def test_a_bad_timeout_header_is_invalid_argument_naming_the_header(headers, named):
    with pytest.raises(ApiError) as refused:
        deadline_of(headers, now=NOW)
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.message.startswith(named + " is not ")


def test_a_huge_timeout_header_is_refused_with_a_bounded_message():
    with pytest.raises(ApiError) as refused:
        deadline_of({"x-request-timeout": "9" * 100_000}, now=NOW)  # float() overflows: inf
    assert len(refused.value.message.encode()) <= 2048


def test_deadline_defaults_to_the_monotonic_clock():
    before = time.monotonic()
    deadline = deadline_of({"x-request-timeout": "30"})
    assert before + 30 <= deadline <= time.monotonic() + 30


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("req-1", "req-1"),
        ("r" * MAX_REQUEST_ID, "r" * MAX_REQUEST_ID),
        ("r" * (MAX_REQUEST_ID + 50), "r" * MAX_REQUEST_ID),  # truncated, not refused
        ("", None),  # empty: the Call makes one
        (None, None),
    ],
)
def test_request_id_is_the_callers_up_to_128_characters_else_generated(given, kept):
    headers = {} if given is None else {"x-request-id": given}
    call = http_call(ECHO, "rest", headers)
    assert request_id_of(headers) == kept
    if kept is None:
        assert re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", call.request_id)  # uuid4 hex
    else:
        assert call.request_id == kept


def test_http_call_carries_method_protocol_metadata_and_deadline():
    headers = header_map(
        [
            (b"Authorization", b"Bearer secret"),
            (b"Grpc-Metadata-Trace-Hint", b"t1"),
            (b"Content-Type", b"application/json"),
            (b"X-Request-Timeout", b"30"),
        ]
    )
    before = time.monotonic()
    call = http_call(ECHO, "graphql", headers)
    assert call.method is ECHO and call.protocol == "graphql"
    assert call.metadata == {
        "authorization": "Bearer secret",
        "trace-hint": "t1",
        "x-request-timeout": "30",
    }
    assert before + 30 <= call.deadline <= time.monotonic() + 30
    assert 0 < call.time_remaining() <= 30
    assert http_call(ECHO, "rest", {}).deadline is None


def test_http_call_refuses_a_bad_timeout_before_making_the_call():
    with pytest.raises(ApiError, match="grpc-timeout header"):
        http_call(ECHO, "rest", {"grpc-timeout": "forever"})
