"""The Connect protocol on port 8000, spoken raw with httpx against a real gateway: unary in
proto3 JSON and binary proto, Connect-Protocol-Version, Connect-Timeout-Ms deadlines, each
error code's HTTP status and JSON error body, GET refused for RPCs not marked side-effect free,
server streams with their end-of-stream envelope, auth refused before the body is read, and
compression: gzip request bodies, GET messages and envelopes inflated within the body limit,
replies compressed over server.gzip_min_bytes when the client takes gzip."""

from __future__ import annotations

import base64
import gzip
import json
import socket
import struct

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2

from citadel.adapters.connect import code_name
from citadel.adapters.errors import HTTP_STATUS
from tests.adapters.conftest import MAX_MESSAGE_BYTES, EchoGatewayProcess
from tests.adapters.echo import SERVICE_NAME, echo_pb2
from tests.security.conftest import Secured, start_secured
from tests.support.raw_http import read_response

# The Connect spec's table (connectrpc.com/docs/protocol#error-codes), written out here.
CONNECT_HTTP_STATUS = {
    "canceled": 499,
    "unknown": 500,
    "invalid_argument": 400,
    "deadline_exceeded": 504,
    "not_found": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "resource_exhausted": 429,
    "failed_precondition": 400,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
    "unauthenticated": 401,
}
JSON_HEADERS = {"content-type": "application/json", "connect-protocol-version": "1"}


def envelopes(body: bytes) -> list[tuple[int, bytes]]:
    out = []
    while body:
        flags, length = struct.unpack_from(">BI", body)
        out.append((flags, body[5 : 5 + length]))
        body = body[5 + length :]
    return out


def test_unary_json(http):
    reply = http.post(
        f"/{SERVICE_NAME}/Echo",
        json={"id": "cj", "count": "1099511627776", "color": "COLOR_BLUE"},
        headers=JSON_HEADERS,
    )
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["request"] == {"id": "cj", "count": "1099511627776", "color": "COLOR_BLUE"}
    assert body["protocol"] == "connect"
    assert reply.headers["x-echo-protocol"] == "connect"


def test_unary_proto(http):
    request = echo_pb2.EchoRequest(id="cp", embedding=[0.25])
    reply = http.post(
        f"/{SERVICE_NAME}/Echo",
        content=request.SerializeToString(),
        headers={"content-type": "application/proto"},
    )
    assert reply.status_code == 200 and reply.headers["content-type"] == "application/proto"
    echoed = echo_pb2.EchoResponse.FromString(reply.content)
    assert echoed.request.id == "cp" and list(echoed.request.embedding) == [0.25]


def test_metadata_and_timeout_reach_the_call(http):
    headers = {**JSON_HEADERS, "x-team": "green", "connect-timeout-ms": "4000"}
    body = http.post(f"/{SERVICE_NAME}/Echo", json={}, headers=headers).json()
    assert body["metadata"]["x-team"] == "green"
    assert not any(k.startswith("connect-") for k in body["metadata"])
    assert 0 < body["deadlineSeconds"] <= 4


def test_timeout_is_deadline_exceeded(http):
    headers = {**JSON_HEADERS, "connect-timeout-ms": "200"}
    reply = http.post(f"/{SERVICE_NAME}/Raise", json={"sleepMs": 3000}, headers=headers)
    assert reply.status_code == 504 and reply.json()["code"] == "deadline_exceeded"


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c is not grpc.StatusCode.OK])
def test_each_error_code_has_the_specs_http_status(http, code):
    reply = http.post(
        f"/{SERVICE_NAME}/Raise", json={"code": code.name, "message": "said so"}, headers=JSON_HEADERS
    )
    body = reply.json()
    assert body["code"] == code_name(code)
    assert reply.status_code == CONNECT_HTTP_STATUS[body["code"]] == HTTP_STATUS[code]
    assert body["message"] == "said so"
    (detail,) = body["details"]
    assert detail["type"] == "google.rpc.RequestInfo"
    info = error_details_pb2.RequestInfo.FromString(base64.b64decode(detail["value"] + "=="))
    assert info.request_id == reply.headers["x-request-id"]


@pytest.mark.parametrize(
    ("headers", "content", "says"),
    [
        ({"connect-protocol-version": "2"}, b"{}", "Connect-Protocol-Version"),
        ({"connect-timeout-ms": "soon"}, b"{}", "Connect-Timeout-Ms"),
        ({"connect-timeout-ms": "12345678901"}, b"{}", "at most 10 digits"),
        ({}, b'{"small": "many"}', "small"),
        ({}, b"{not json", "JSON"),
    ],
)
def test_bad_requests_are_invalid_argument_naming_the_problem(http, headers, content, says):
    reply = http.post(
        f"/{SERVICE_NAME}/Echo", content=content, headers={"content-type": "application/json", **headers}
    )
    assert reply.status_code == 400, reply.text
    assert reply.json()["code"] == "invalid_argument" and says in reply.json()["message"]


def test_unknown_content_encoding_is_unimplemented_listing_the_accepted_ones(http):
    headers = {**JSON_HEADERS, "content-encoding": "br"}
    reply = http.post(f"/{SERVICE_NAME}/Echo", content=b"{}", headers=headers)
    assert reply.status_code == 501 and reply.json()["code"] == "unimplemented"
    assert "'br'" in reply.json()["message"] and "gzip" in reply.json()["message"]


def test_gzip_request_body_is_inflated(http):
    headers = {**JSON_HEADERS, "content-encoding": "gzip", "accept-encoding": "identity"}
    body = gzip.compress(json.dumps({"id": "squeezed", "count": "7"}).encode())
    reply = http.post(f"/{SERVICE_NAME}/Echo", content=body, headers=headers)
    assert reply.status_code == 200, reply.text
    assert reply.json()["request"] == {"id": "squeezed", "count": "7"}
    assert "content-encoding" not in reply.headers  # the client said identity
    # A proto body too, and an empty one is never inflated (the spec forbids it).
    proto = gzip.compress(echo_pb2.EchoRequest(id="squeezed-proto").SerializeToString())
    as_proto = http.post(
        f"/{SERVICE_NAME}/Echo",
        content=proto,
        headers={"content-type": "application/proto", "content-encoding": "gzip"},
    )
    assert echo_pb2.EchoResponse.FromString(as_proto.content).request.id == "squeezed-proto"
    empty = http.post(f"/{SERVICE_NAME}/Echo", content=b"", headers=headers)
    assert empty.status_code == 200 and empty.json()["request"] == {}


def test_zip_bomb_is_refused_naming_the_limit_on_its_inflated_size(http):
    """4 MB of JSON whitespace in ~4 KB of gzip: refused once past limits.rest_body_bytes."""
    bomb = gzip.compress(b"{" + b" " * (4 * MAX_MESSAGE_BYTES) + b"}")
    assert len(bomb) < MAX_MESSAGE_BYTES // 100
    reply = http.post(
        f"/{SERVICE_NAME}/Echo", content=bomb, headers={**JSON_HEADERS, "content-encoding": "gzip"}
    )
    assert reply.status_code == 429 and reply.json()["code"] == "resource_exhausted"
    assert f"limits.rest_body_bytes ({MAX_MESSAGE_BYTES} bytes)" in reply.json()["message"]
    broken = http.post(
        f"/{SERVICE_NAME}/Echo", content=bomb[:100], headers={**JSON_HEADERS, "content-encoding": "gzip"}
    )
    assert broken.status_code == 400 and "gzip" in broken.json()["message"]


def test_reply_over_the_threshold_is_gzip_when_accepted_and_only_then(http):
    """server.gzip_min_bytes is 1024 here: a 3,000-character id makes the reply larger."""
    big = {"id": "z" * 3000}
    with http.stream(
        "POST", f"/{SERVICE_NAME}/Echo", json=big, headers={**JSON_HEADERS, "accept-encoding": "gzip"}
    ) as reply:
        raw = b"".join(reply.iter_raw())  # the bytes on the wire, not decoded
        assert reply.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in reply.headers["vary"]
    assert json.loads(gzip.decompress(raw))["request"] == big and len(raw) < 1024
    plain = http.post(
        f"/{SERVICE_NAME}/Echo", json=big, headers={**JSON_HEADERS, "accept-encoding": "identity"}
    )
    assert "content-encoding" not in plain.headers and plain.json()["request"] == big
    assert "Accept-Encoding" in plain.headers["vary"]
    small = http.post(
        f"/{SERVICE_NAME}/Echo", json={"id": "s"}, headers={**JSON_HEADERS, "accept-encoding": "gzip"}
    )
    assert "content-encoding" not in small.headers and small.json()["request"] == {"id": "s"}


def test_without_accept_encoding_the_reply_takes_the_requests_encoding(http):
    request = http.build_request(
        "POST",
        f"/{SERVICE_NAME}/Echo",
        content=gzip.compress(json.dumps({"id": "y" * 3000}).encode()),
        headers={**JSON_HEADERS, "content-encoding": "gzip"},
    )
    del request.headers["accept-encoding"]
    reply = http.send(request)
    assert reply.status_code == 200 and reply.headers["content-encoding"] == "gzip"
    assert reply.json()["request"]["id"] == "y" * 3000


def test_body_over_the_limit_names_the_setting(http):
    reply = http.post(
        f"/{SERVICE_NAME}/Echo",
        content=b"0" * (MAX_MESSAGE_BYTES + 1),
        headers={"content-type": "application/proto"},
    )
    assert reply.status_code == 429 and reply.json()["code"] == "resource_exhausted"
    assert "limits.rest_body_bytes" in reply.json()["message"]


def test_get_is_refused_for_rpcs_not_marked_side_effect_free(http):
    """No RPC of EchoService is marked idempotency_level = NO_SIDE_EFFECTS."""
    reply = http.get(f"/{SERVICE_NAME}/Echo", params={"connect": "v1", "encoding": "json", "message": "{}"})
    assert reply.status_code == 405 and reply.headers["allow"] == "POST"


def test_streaming_content_type_on_a_unary_rpc_is_415(http):
    reply = http.post(
        f"/{SERVICE_NAME}/Echo", content=b"", headers={"content-type": "application/connect+json"}
    )
    assert reply.status_code == 415


def stream(http, to: int, as_json: bool = True, **extra) -> list[tuple[int, bytes]]:
    if as_json:
        payload = json.dumps({"to": to, **extra}).encode()
    else:
        payload = echo_pb2.CountRequest(to=to, **extra).SerializeToString()
    body = struct.pack(">BI", 0, len(payload)) + payload
    media = "application/connect+json" if as_json else "application/connect+proto"
    reply = http.post(f"/{SERVICE_NAME}/Count", content=body, headers={"content-type": media})
    assert reply.status_code == 200 and reply.headers["content-type"] == media
    return envelopes(reply.content)


def test_stream_json_to_its_end(http):
    got = stream(http, 4)
    assert [json.loads(m)["n"] for f, m in got[:-1]] == [1, 2, 3, 4]
    assert [f for f, m in got] == [0, 0, 0, 0, 2]
    end = json.loads(got[-1][1])
    assert "error" not in end and end["metadata"]["x-request-id"]


def test_stream_proto_to_its_end(http):
    got = stream(http, 3, as_json=False)
    assert [echo_pb2.CountResponse.FromString(m).n for f, m in got[:-1]] == [1, 2, 3]
    assert got[-1][0] == 2


def test_stream_failing_part_way_ends_with_the_error(http):
    got = stream(http, 5, as_json=False, fail_code="ABORTED", fail_after=1)
    assert len(got) == 2
    end = json.loads(got[-1][1])
    assert end["error"]["code"] == "aborted" and end["error"]["message"] == "failed after 1 items"


def test_stream_refused_before_its_first_message_is_still_200_with_the_error(http):
    got = stream(http, -1)
    ((flags, end),) = got
    assert flags == 2 and json.loads(end)["error"]["code"] == "invalid_argument"


@pytest.fixture(scope="module")
def secured_gateway(tmp_path_factory):
    gateway = start_secured(tmp_path_factory.mktemp("connect-secured"))
    yield gateway
    gateway.proc.stop()


def test_auth_refusal_comes_before_the_body_is_read(secured_gateway: Secured):
    """Headers promise 50 MB that never come: the refusal answers from the headers alone."""
    head = (
        "POST /citadel.vector.v1.VectorService/ListCollections HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{secured_gateway.proc.http_port}\r\n"
        "Content-Type: application/proto\r\nContent-Length: 50000000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", secured_gateway.proc.http_port), timeout=10) as sock:
        sock.sendall(head.encode())
        answer = read_response(sock)
    assert answer.startswith("HTTP/1.1 401") and '"code":"unauthenticated"' in answer


def test_bearer_key_is_accepted_and_roles_apply(secured_gateway: Secured):
    with httpx.Client(base_url=secured_gateway.proc.http_url, timeout=30) as http:
        path = "/citadel.vector.v1.VectorService/ListCollections"
        ok = http.post(path, json={}, headers={**JSON_HEADERS, **secured_gateway.headers("reader")})
        create = http.post(
            "/citadel.vector.v1.VectorService/CreateCollection",
            json={"collection": {"name": "connect-denied", "dimension": 3}},
            headers={**JSON_HEADERS, **secured_gateway.headers("reader")},
        )
    assert ok.status_code == 200, ok.text
    assert create.status_code == 403 and create.json()["code"] == "permission_denied"


def test_get_serves_rpcs_marked_side_effect_free_in_json_and_base64_proto(http):
    """The product's reads are marked idempotency_level = NO_SIDE_EFFECTS: a Connect GET serves
    them, the message in the query string (JSON, or URL-safe base64 of the binary form)."""
    from citadel.vector.v1 import resources_pb2
    from citadel.vector.v1 import vector_service_pb2 as pb

    created = http.post(
        "/citadel.vector.v1.VectorService/CreateCollection",
        json={"collection": {"name": "connect-get", "dimension": 2, "distance": "DISTANCE_COSINE"}},
        headers=JSON_HEADERS,
    )
    assert created.status_code == 200, created.text
    path = "/citadel.vector.v1.VectorService/GetCollection"
    as_json = http.get(
        path, params={"connect": "v1", "encoding": "json", "message": '{"name": "connect-get"}'}
    )
    assert as_json.status_code == 200, as_json.text
    assert as_json.json()["collection"]["name"] == "connect-get"
    binary = base64.urlsafe_b64encode(pb.GetCollectionRequest(name="connect-get").SerializeToString())
    as_proto = http.get(
        path,
        params={"connect": "v1", "encoding": "proto", "base64": "1", "message": binary.decode().rstrip("=")},
    )
    assert as_proto.status_code == 200, as_proto.text
    reply = pb.GetCollectionResponse.FromString(as_proto.content)
    assert reply.collection.distance == resources_pb2.DISTANCE_COSINE
    missing = http.get(path, params={"connect": "v1", "encoding": "json", "message": '{"name": "nope-x"}'})
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    # A write is never served by GET.
    write = http.get(
        "/citadel.vector.v1.VectorService/DeleteCollection",
        params={"connect": "v1", "encoding": "json", "message": '{"name": "connect-get"}'},
    )
    assert write.status_code == 405


def test_get_with_a_gzip_message(http):
    created = http.post(
        "/citadel.vector.v1.VectorService/CreateCollection",
        json={"collection": {"name": "connect-gzip-get", "dimension": 2, "distance": "DISTANCE_DOT"}},
        headers=JSON_HEADERS,
    )
    assert created.status_code == 200, created.text
    packed = gzip.compress(b'{"name": "connect-gzip-get"}')
    params = {
        "connect": "v1",
        "encoding": "json",
        "compression": "gzip",
        "base64": "1",
        "message": base64.urlsafe_b64encode(packed).decode().rstrip("="),
    }
    reply = http.get("/citadel.vector.v1.VectorService/GetCollection", params=params)
    assert reply.status_code == 200, reply.text
    assert reply.json()["collection"]["name"] == "connect-gzip-get"
    unknown = http.get(
        "/citadel.vector.v1.VectorService/GetCollection", params={**params, "compression": "zstd"}
    )
    assert unknown.status_code == 501 and "gzip" in unknown.json()["message"]
    bomb = gzip.compress(b"{" + b" " * (2 * MAX_MESSAGE_BYTES) + b"}")
    refused = http.get(
        "/citadel.vector.v1.VectorService/GetCollection",
        params={**params, "message": base64.urlsafe_b64encode(bomb).decode().rstrip("=")},
    )
    assert refused.status_code == 429 and "limits.rest_body_bytes" in refused.json()["message"]


# Streams: envelopes are compressed one by one when at least server.gzip_min_bytes, so a
# gateway with a threshold below a Count message shows it.
STREAM_GZIP_MIN_BYTES = 16


@pytest.fixture(scope="module")
def squeezing(tmp_path_factory):
    proc = EchoGatewayProcess(
        tmp_path_factory.mktemp("connect-gzip") / "data",
        env={
            "CITADEL_REST_BODY_BYTES": str(MAX_MESSAGE_BYTES),
            "CITADEL_GZIP_MIN_BYTES": str(STREAM_GZIP_MIN_BYTES),
            "CITADEL_LOG_LEVEL": "WARNING",
        },
    ).start()
    try:
        with httpx.Client(base_url=proc.http_url, timeout=30.0) as client:
            yield client
    finally:
        proc.stop()


def compressed_stream(http, payload: bytes, flags: int, headers: dict) -> httpx.Response:
    return http.post(
        f"/{SERVICE_NAME}/Count",
        content=struct.pack(">BI", flags, len(payload)) + payload,
        headers={"content-type": "application/connect+json", **headers},
    )


def test_stream_envelopes_compressed_both_ways(squeezing):
    """A compressed request envelope with Connect-Content-Encoding and no
    Connect-Accept-Encoding: the reply takes gzip too (the spec's inference), every envelope
    over the threshold flagged 0x01, the end-of-stream one as 0x03."""
    payload = gzip.compress(json.dumps({"to": 3}).encode())
    reply = compressed_stream(squeezing, payload, 1, {"connect-content-encoding": "gzip"})
    assert reply.status_code == 200 and reply.headers["connect-content-encoding"] == "gzip"
    assert "gzip" in reply.headers["connect-accept-encoding"]
    got = envelopes(reply.content)
    assert [f for f, m in got] == [1, 1, 1, 3]
    assert [json.loads(gzip.decompress(m))["n"] for f, m in got[:-1]] == [1, 2, 3]
    end = json.loads(gzip.decompress(got[-1][1]))
    assert "error" not in end and end["metadata"]["x-request-id"]


def test_stream_not_compressed_when_the_client_takes_identity(squeezing, http):
    reply = compressed_stream(
        squeezing, json.dumps({"to": 2}).encode(), 0, {"connect-accept-encoding": "identity"}
    )
    assert "connect-content-encoding" not in reply.headers
    got = envelopes(reply.content)
    assert [f for f, m in got] == [0, 0, 2] and json.loads(got[0][1])["n"] == 1
    # Under the threshold (1024 bytes on the other gateway): plain though gzip is accepted.
    under = compressed_stream(http, json.dumps({"to": 2}).encode(), 0, {"connect-accept-encoding": "gzip"})
    assert [f for f, m in envelopes(under.content)] == [0, 0, 2]


@pytest.mark.parametrize(
    ("payload", "flags", "headers", "code", "says"),
    [
        (
            gzip.compress(b"{" + b" " * (2 * MAX_MESSAGE_BYTES) + b"}"),
            1,
            {"connect-content-encoding": "gzip"},
            "resource_exhausted",
            f"limits.rest_body_bytes ({MAX_MESSAGE_BYTES} bytes)",
        ),
        (b"{}", 0, {"connect-content-encoding": "snappy"}, "unimplemented", "gzip"),
        (gzip.compress(b"{}"), 1, {}, "invalid_argument", "flagged compressed"),
    ],
)
def test_stream_compression_refusals_end_the_stream_with_the_error(
    squeezing, payload, flags, headers, code, says
):
    reply = compressed_stream(squeezing, payload, flags, {"connect-accept-encoding": "identity", **headers})
    assert reply.status_code == 200
    ((end_flags, end),) = envelopes(reply.content)
    error = json.loads(end)["error"]
    assert end_flags == 2 and error["code"] == code and says in error["message"]
