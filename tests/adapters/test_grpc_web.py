"""gRPC-Web on port 8000, spoken raw with httpx against a real gateway: envelope framing in
binary and base64 text mode, status in the trailer frame, trailers-only errors in headers,
grpc-timeout deadlines, server streaming to its end or its failure, metadata and auth (refused
before the body is read), the body limit naming its setting, and compression (grpc-encoding
messages and Content-Encoding bodies inflated within that limit; replies compressed over
server.gzip_min_bytes per grpc-accept-encoding, or whole by Accept-Encoding)."""

from __future__ import annotations

import base64
import gzip
import socket
import struct
from urllib.parse import unquote

import httpx
import pytest

from citadel.vector.v1 import vector_service_pb2
from tests.adapters.conftest import MAX_MESSAGE_BYTES, EchoGatewayProcess
from tests.adapters.echo import SERVICE_NAME, echo_pb2
from tests.security.conftest import Secured, start_secured
from tests.support.raw_http import read_response

BINARY = "application/grpc-web+proto"
TEXT = "application/grpc-web-text+proto"


def frame(payload: bytes, flags: int = 0) -> bytes:
    return struct.pack(">BI", flags, len(payload)) + payload


def frames(body: bytes) -> list[tuple[int, bytes]]:
    out = []
    while body:
        flags, length = struct.unpack_from(">BI", body)
        out.append((flags, body[5 : 5 + length]))
        body = body[5 + length :]
    return out


def decode_text(body: bytes) -> bytes:
    """Base64 that may be padded chunks one after another, decoded 4 characters at a time."""
    return b"".join(base64.b64decode(body[i : i + 4]) for i in range(0, len(body), 4))


def trailers(payload: bytes) -> dict[str, str]:
    lines = payload.decode().split("\r\n")
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}


def call(
    http, method: str, request, content_type: str = BINARY, headers: dict | None = None, service=SERVICE_NAME
):
    body = frame(request.SerializeToString())
    if content_type.startswith("application/grpc-web-text"):
        body = base64.b64encode(body)
    return http.post(
        f"/{service}/{method}", content=body, headers={"content-type": content_type, **(headers or {})}
    )


def test_unary_reply_then_trailer_frame(http):
    reply = call(http, "Echo", echo_pb2.EchoRequest(id="web", count=1 << 40, embedding=[0.5, 1.5]))
    assert reply.status_code == 200
    assert reply.headers["content-type"] == BINARY
    (flags, message), (trailer_flags, trailer) = frames(reply.content)
    assert (flags, trailer_flags) == (0, 0x80)
    echoed = echo_pb2.EchoResponse.FromString(message)
    assert echoed.request.id == "web" and echoed.request.count == 1 << 40
    assert list(echoed.request.embedding) == [0.5, 1.5]
    assert echoed.protocol == "grpc-web"
    assert reply.headers["x-echo-protocol"] == "grpc-web"  # response metadata as headers
    status = trailers(trailer)
    assert status["grpc-status"] == "0"
    assert status["x-request-id"] == echoed.request_id == reply.headers["x-request-id"]


def test_text_mode_is_base64_both_ways(http):
    reply = call(http, "Echo", echo_pb2.EchoRequest(id="text"), content_type=TEXT)
    assert reply.status_code == 200 and reply.headers["content-type"] == TEXT
    (_, message), (flags, trailer) = frames(base64.b64decode(reply.content))  # unary: one run
    assert echo_pb2.EchoResponse.FromString(message).request.id == "text"
    assert flags == 0x80 and trailers(trailer)["grpc-status"] == "0"


def test_text_mode_accepts_padded_chunks_one_after_another(http):
    """A client may base64 each write on its own: padding in the middle of the body."""
    framed = frame(echo_pb2.EchoRequest(id="chunks-x").SerializeToString())
    body = base64.b64encode(framed[:4]) + base64.b64encode(framed[4:])
    assert b"=" in body[: len(body) - 2]
    reply = http.post(f"/{SERVICE_NAME}/Echo", content=body, headers={"content-type": TEXT})
    (_, message), _ = frames(decode_text(reply.content))
    assert echo_pb2.EchoResponse.FromString(message).request.id == "chunks-x"


def test_metadata_and_grpc_timeout_reach_the_call(http):
    reply = call(http, "Echo", echo_pb2.EchoRequest(), headers={"x-team": "blue", "grpc-timeout": "5S"})
    echoed = echo_pb2.EchoResponse.FromString(frames(reply.content)[0][1])
    assert echoed.metadata["x-team"] == "blue"
    assert "content-type" not in echoed.metadata and "grpc-timeout" not in echoed.metadata
    assert 0 < echoed.deadline_seconds.value <= 5


def test_error_before_any_message_is_trailers_only(http):
    reply = call(http, "Raise", echo_pb2.RaiseRequest(code="NOT_FOUND", message="no shelf 100% here"))
    assert reply.status_code == 200 and reply.content == b""
    assert reply.headers["grpc-status"] == "5"
    assert unquote(reply.headers["grpc-message"]) == "no shelf 100% here"
    assert "%25" in reply.headers["grpc-message"]  # percent-encoded as gRPC says
    assert reply.headers["x-request-id"]


def test_deadline_exceeded(http):
    reply = call(http, "Raise", echo_pb2.RaiseRequest(sleep_ms=3000), headers={"grpc-timeout": "200m"})
    assert reply.headers["grpc-status"] == "4"


def test_bad_message_bytes_are_invalid_argument(http):
    body = frame(b"\xff\xff\xff")
    reply = http.post(f"/{SERVICE_NAME}/Echo", content=body, headers={"content-type": BINARY})
    assert reply.headers["grpc-status"] == "3"
    assert "EchoRequest" in unquote(reply.headers["grpc-message"])


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"\x00\x00", "less than an envelope header"),
        (frame(b"", flags=1), "compressed"),
        (frame(b"\x0a\x01a") + frame(b""), "exactly one message"),
    ],
)
def test_bad_framing_is_refused_naming_the_problem(http, body, says):
    reply = http.post(f"/{SERVICE_NAME}/Echo", content=body, headers={"content-type": BINARY})
    assert reply.headers["grpc-status"] in ("3", "12")
    assert says in unquote(reply.headers["grpc-message"])


def test_body_over_the_limit_names_the_setting(http):
    request = echo_pb2.EchoRequest(payload=b"x" * (MAX_MESSAGE_BYTES + 10))
    reply = call(http, "Echo", request)
    assert reply.headers["grpc-status"] == "8"
    assert "limits.rest_body_bytes" in unquote(reply.headers["grpc-message"])


def test_server_stream_to_its_end(http):
    reply = call(http, "Count", echo_pb2.CountRequest(to=5))
    assert reply.status_code == 200
    got = frames(reply.content)
    assert [echo_pb2.CountResponse.FromString(m).n for f, m in got[:-1]] == [1, 2, 3, 4, 5]
    assert got[-1][0] == 0x80 and trailers(got[-1][1])["grpc-status"] == "0"


def test_server_stream_failing_part_way_ends_with_its_status(http):
    reply = call(http, "Count", echo_pb2.CountRequest(to=5, fail_code="UNAVAILABLE", fail_after=2))
    got = frames(reply.content)
    assert [echo_pb2.CountResponse.FromString(m).n for f, m in got[:-1]] == [1, 2]
    status = trailers(got[-1][1])
    assert status["grpc-status"] == "14" and unquote(status["grpc-message"]) == "failed after 2 items"


def test_text_mode_stream(http):
    reply = call(http, "Count", echo_pb2.CountRequest(to=3), content_type=TEXT)
    got = frames(decode_text(reply.content))  # each frame is base64 on its own
    assert [echo_pb2.CountResponse.FromString(m).n for f, m in got[:-1]] == [1, 2, 3]
    assert got[-1][0] == 0x80 and trailers(got[-1][1])["grpc-status"] == "0"


def test_other_content_types_on_an_rpc_path_are_415(http):
    reply = http.post(f"/{SERVICE_NAME}/Echo", content=b"{}", headers={"content-type": "text/plain"})
    assert reply.status_code == 415
    assert "application/grpc-web" in reply.text


def test_rest_and_pages_still_answer_beside_the_rpc_paths(http):
    assert http.get("/v1/echo/abc").json()["protocol"] == "rest"
    assert http.get("/healthz").status_code == 200
    assert http.get(f"/{SERVICE_NAME}/NoSuchMethod").status_code == 404  # not an RPC: the pages' 404


@pytest.fixture(scope="module")
def secured_gateway(tmp_path_factory):
    gateway = start_secured(tmp_path_factory.mktemp("grpc-web-secured"))
    yield gateway
    gateway.proc.stop()


def test_auth_refusal_comes_before_the_body_is_read(secured_gateway: Secured):
    """Headers promise 50 MB that never come: the refusal answers from the headers alone."""
    head = (
        "POST /citadel.vector.v1.VectorService/ListCollections HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{secured_gateway.proc.http_port}\r\n"
        f"Content-Type: {BINARY}\r\nContent-Length: 50000000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", secured_gateway.proc.http_port), timeout=10) as sock:
        sock.sendall(head.encode())
        answer = read_response(sock).lower()
    assert "grpc-status: 16" in answer


def test_bearer_key_is_accepted(secured_gateway: Secured):
    with httpx.Client(base_url=secured_gateway.proc.http_url, timeout=30) as http:
        reply = call(
            http,
            "ListCollections",
            vector_service_pb2.ListCollectionsRequest(),
            headers=secured_gateway.headers("reader"),
            service="citadel.vector.v1.VectorService",
        )
        refused = call(
            http,
            "ListCollections",
            vector_service_pb2.ListCollectionsRequest(),
            headers={"authorization": "Bearer wrong"},
            service="citadel.vector.v1.VectorService",
        )
    assert reply.status_code == 200 and trailers(frames(reply.content)[-1][1])["grpc-status"] == "0"
    assert refused.headers["grpc-status"] == "16"


def test_compressed_request_message_is_inflated(http):
    packed = gzip.compress(echo_pb2.EchoRequest(id="squeezed-web").SerializeToString())
    reply = http.post(
        f"/{SERVICE_NAME}/Echo",
        content=frame(packed, flags=1),
        headers={"content-type": BINARY, "grpc-encoding": "gzip"},
    )
    (flags, message), _ = frames(reply.content)
    assert echo_pb2.EchoResponse.FromString(message).request.id == "squeezed-web"
    assert "grpc-encoding" not in echo_pb2.EchoResponse.FromString(message).metadata


def test_gzip_body_is_inflated(http):
    """PROTOCOL-WEB.md's full-body compression: Content-Encoding on the whole request."""
    body = gzip.compress(frame(echo_pb2.EchoRequest(id="whole-body").SerializeToString()))
    reply = http.post(
        f"/{SERVICE_NAME}/Echo", content=body, headers={"content-type": BINARY, "content-encoding": "gzip"}
    )
    (_, message), _ = frames(reply.content)
    assert echo_pb2.EchoResponse.FromString(message).request.id == "whole-body"


@pytest.mark.parametrize("whole_body", [False, True])
def test_zip_bomb_is_refused_naming_the_limit(http, whole_body):
    """4 MB of payload in a few KB of gzip, as a compressed message or a compressed body."""
    inner = echo_pb2.EchoRequest(payload=bytes(4 * MAX_MESSAGE_BYTES)).SerializeToString()
    if whole_body:
        body, headers = gzip.compress(frame(inner)), {"content-encoding": "gzip"}
    else:
        body, headers = frame(gzip.compress(inner), flags=1), {"grpc-encoding": "gzip"}
    assert len(body) < MAX_MESSAGE_BYTES // 100
    reply = http.post(f"/{SERVICE_NAME}/Echo", content=body, headers={"content-type": BINARY, **headers})
    assert reply.headers["grpc-status"] == "8"
    assert f"limits.rest_body_bytes ({MAX_MESSAGE_BYTES} bytes)" in unquote(reply.headers["grpc-message"])


def test_unknown_encoding_is_unimplemented_listing_the_accepted_ones(http):
    reply = call(http, "Echo", echo_pb2.EchoRequest(), headers={"grpc-encoding": "snappy"})
    assert reply.headers["grpc-status"] == "12"
    assert "gzip" in unquote(reply.headers["grpc-message"])
    assert "gzip" in reply.headers["grpc-accept-encoding"]


def test_reply_messages_compressed_over_the_threshold_when_accepted(http):
    """server.gzip_min_bytes is 1024 here; the reply echoes a 5,000-byte payload."""
    request = echo_pb2.EchoRequest(id="big", payload=b"p" * 5000)
    reply = call(
        http, "Echo", request, headers={"grpc-accept-encoding": "gzip", "accept-encoding": "identity"}
    )
    assert reply.headers["grpc-encoding"] == "gzip" and "content-encoding" not in reply.headers
    (flags, message), (trailer_flags, trailer) = frames(reply.content)
    assert (flags, trailer_flags) == (1, 0x80) and len(message) < 1024
    assert echo_pb2.EchoResponse.FromString(gzip.decompress(message)).request.payload == b"p" * 5000
    assert trailers(trailer)["grpc-status"] == "0"
    # Text mode: the same compressed frame inside the base64.
    text = call(
        http,
        "Echo",
        request,
        content_type=TEXT,
        headers={"grpc-accept-encoding": "gzip", "accept-encoding": "identity"},
    )
    (flags, message), _ = frames(base64.b64decode(text.content))
    assert flags == 1 and echo_pb2.EchoResponse.FromString(gzip.decompress(message)).request.id == "big"


def test_reply_not_compressed_when_not_accepted_or_under_the_threshold(http):
    big = echo_pb2.EchoRequest(payload=b"p" * 5000)
    plain = call(http, "Echo", big, headers={"accept-encoding": "identity"})
    assert "grpc-encoding" not in plain.headers and "content-encoding" not in plain.headers
    assert frames(plain.content)[0][0] == 0
    small = call(http, "Echo", echo_pb2.EchoRequest(id="s"), headers={"grpc-accept-encoding": "gzip"})
    assert frames(small.content)[0][0] == 0


def test_unary_reply_compressed_whole_by_accept_encoding(http):
    """Without grpc-accept-encoding, a browser's Accept-Encoding: gzip gets the whole body
    compressed (it decodes it itself), the frames inside plain."""
    big = echo_pb2.EchoRequest(payload=b"q" * 5000)
    with http.stream(
        "POST",
        f"/{SERVICE_NAME}/Echo",
        content=frame(big.SerializeToString()),
        headers={"content-type": BINARY, "accept-encoding": "gzip"},
    ) as reply:
        raw = b"".join(reply.iter_raw())
        assert reply.headers["content-encoding"] == "gzip" and "Accept-Encoding" in reply.headers["vary"]
    (flags, message), (trailer_flags, _) = frames(gzip.decompress(raw))
    assert (flags, trailer_flags) == (0, 0x80) and len(raw) < 1024
    assert echo_pb2.EchoResponse.FromString(message).request.payload == b"q" * 5000


@pytest.fixture(scope="module")
def squeezing(tmp_path_factory):
    """A gateway whose threshold (16 bytes) is below a Count message."""
    proc = EchoGatewayProcess(
        tmp_path_factory.mktemp("grpc-web-gzip") / "data",
        env={"CITADEL_GZIP_MIN_BYTES": "16", "CITADEL_LOG_LEVEL": "WARNING"},
    ).start()
    try:
        with httpx.Client(base_url=proc.http_url, timeout=30.0) as client:
            yield client
    finally:
        proc.stop()


@pytest.mark.parametrize("content_type", [BINARY, TEXT])
def test_stream_messages_compressed_one_by_one(squeezing, content_type):
    reply = call(
        squeezing, "Count", echo_pb2.CountRequest(to=3), content_type, {"grpc-accept-encoding": "gzip"}
    )
    assert reply.headers["grpc-encoding"] == "gzip"
    body = decode_text(reply.content) if content_type == TEXT else reply.content
    got = frames(body)
    assert [f for f, m in got] == [1, 1, 1, 0x80]
    assert [echo_pb2.CountResponse.FromString(gzip.decompress(m)).n for f, m in got[:-1]] == [1, 2, 3]
    assert trailers(got[-1][1])["grpc-status"] == "0"
    plain = call(squeezing, "Count", echo_pb2.CountRequest(to=2), content_type, {"accept-encoding": "gzip"})
    body = decode_text(plain.content) if content_type == TEXT else plain.content
    assert [f for f, m in frames(body)] == [0, 0, 0x80]  # streams are never compressed whole
