"""Hypothesis-generated protobuf messages against the gRPC server: every RPC of every service.

Requests come from the descriptors (proto_strategies.py): every field type, unknown enum
values, NaN/inf, huge and empty strings, deep nesting, plus bytes that are not the request
message at all (random, or a valid encoding cut or corrupted). Whatever arrives, the answer is
OK or a status naming the problem (INVALID_ARGUMENT, NOT_FOUND, ...), never UNKNOWN or
INTERNAL. Client-streaming RPCs get a generated sequence of messages; server-streaming ones
are read to the end.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor, message_factory
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from citadel.server.descriptors import SERVICES
from tests.fuzz import seed
from tests.fuzz.budget import RANDOM, examples
from tests.fuzz.proto_strategies import messages

METHODS = [m for service in SERVICES for m in service.methods]
BROKEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
CALL_TIMEOUT = 60.0  # generous: the point is the status, not the speed
MAX_STREAM = 5
FUZZ_SETTINGS = settings(
    max_examples=examples(100),
    deadline=None,
    derandomize=not RANDOM,  # by default the same examples every run: CI cannot flake on a new draw
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def assert_not_broken(method: descriptor.MethodDescriptor, code: grpc.StatusCode, details: str) -> None:
    note(f"{code.name}: {details}")
    assert code not in BROKEN, f"{path_of(method)} answered {code.name}: {details}"
    # The status itself must reach the client (a message past its metadata limit does not).
    assert "metadata size exceeds" not in details, f"{path_of(method)}: status lost: {details}"


def path_of(method: descriptor.MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def invoke(
    channel: grpc.Channel, method: descriptor.MethodDescriptor, request
) -> tuple[grpc.StatusCode, str]:
    """Sends `request` (a message, bytes, or for client streams a list of either) and reads
    the whole answer; returns the status."""
    path = path_of(method)
    kwargs = {
        "request_serializer": lambda r: r if isinstance(r, bytes) else r.SerializeToString(),
        "response_deserializer": message_factory.GetMessageClass(method.output_type).FromString,
    }
    try:
        if method.client_streaming and method.server_streaming:
            for _ in channel.stream_stream(path, **kwargs)(iter(request), timeout=CALL_TIMEOUT):
                pass
        elif method.client_streaming:
            channel.stream_unary(path, **kwargs)(iter(request), timeout=CALL_TIMEOUT)
        elif method.server_streaming:
            for _ in channel.unary_stream(path, **kwargs)(request, timeout=CALL_TIMEOUT):
                pass
        else:
            channel.unary_unary(path, **kwargs)(request, timeout=CALL_TIMEOUT)
    except grpc.RpcError as e:
        return e.code(), e.details() or ""
    return grpc.StatusCode.OK, ""


def requests_for(method: descriptor.MethodDescriptor) -> st.SearchStrategy:
    one = messages(method.input_type)
    return st.lists(one, max_size=MAX_STREAM) if method.client_streaming else one


def _corrupted(encoded: bytes, data: st.DataObject) -> bytes:
    how = data.draw(st.sampled_from(["truncate", "flip", "append", "bad-utf8"]))
    if how == "truncate" and encoded:
        return encoded[: data.draw(st.integers(0, len(encoded) - 1))]
    if how == "flip" and encoded:
        i = data.draw(st.integers(0, len(encoded) - 1))
        return encoded[:i] + bytes([encoded[i] ^ data.draw(st.integers(1, 255))]) + encoded[i + 1 :]
    if how == "bad-utf8":
        # A length-delimited field 1..15 holding bytes that are not UTF-8 (a string field's
        # decoding must fail cleanly; a bytes or message field's may not).
        field = data.draw(st.integers(1, 15))
        return encoded + bytes([field << 3 | 2, 2, 0xFF, 0xFE])
    return encoded + data.draw(st.binary(min_size=1, max_size=16))


def undecodable_for(method: descriptor.MethodDescriptor, data: st.DataObject):
    def one() -> bytes:
        if data.draw(st.booleans()):
            return data.draw(st.binary(max_size=256))
        return _corrupted(data.draw(messages(method.input_type)).SerializeToString(), data)

    if method.client_streaming:
        return [one() for _ in range(data.draw(st.integers(1, MAX_STREAM)))]
    return one()


@pytest.fixture
def channel(fuzz_gateway) -> grpc.Channel:
    """The fuzz gateway's channel, with the seeded collections and vectors put back (an RPC's
    examples may have deleted them)."""
    seed.seed(fuzz_gateway.channel())
    return fuzz_gateway.channel()


@pytest.mark.parametrize("method", METHODS, ids=lambda m: f"{m.containing_service.name}.{m.name}")
def test_generated_messages_get_no_unknown_or_internal(channel, method):
    @FUZZ_SETTINGS
    @given(request=requests_for(method))
    def run(request):
        assert_not_broken(method, *invoke(channel, method, request))

    run()


@pytest.mark.parametrize("method", METHODS, ids=lambda m: f"{m.containing_service.name}.{m.name}")
def test_undecodable_bytes_get_no_unknown_or_internal(channel, method):
    @FUZZ_SETTINGS
    @given(data=st.data())
    def run(data):
        assert_not_broken(method, *invoke(channel, method, undecodable_for(method, data)))

    run()


def test_undecodable_bytes_are_invalid_argument(channel):
    """Not just "not broken": bytes that are no request at all are the caller's fault."""
    for method in METHODS:
        request = [b"\xff\xff\xff"] if method.client_streaming else b"\xff\xff\xff"
        code, details = invoke(channel, method, request)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (method.full_name, code, details)
