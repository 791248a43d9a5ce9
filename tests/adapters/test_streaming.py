"""A server-streaming RPC (EchoService.Count) over REST as NDJSON and as Server-Sent Events,
and over GraphQL as a subscription on WebSocket (graphql-transport-ws)."""

from __future__ import annotations

import contextlib
import json
import time

import grpc
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.adapters.echo import echo_pb2


def ndjson(response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines() if line]


def sse(response) -> list[tuple[str, dict]]:
    events = []
    for block in response.text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields.get("event", "message"), json.loads(fields["data"])))
    return events


def test_ndjson_stream_ends_with_an_ok_status(http):
    response = http.get("/v1/count/3", headers={"X-Request-Id": "stream-1"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["x-request-id"] == "stream-1"
    lines = ndjson(response)
    assert [line["result"]["n"] for line in lines[:-1]] == [1, 2, 3]
    assert lines[0]["result"] == {"n": 1, "big": "1000000000000", "vector": [1.0, 0.5]}
    assert lines[-1]["status"]["code"] == 0


def test_ndjson_stream_failing_part_way_ends_with_its_status(http):
    lines = ndjson(http.get("/v1/count/5?failCode=ABORTED&failAfter=2"))
    assert [line["result"]["n"] for line in lines[:-1]] == [1, 2]
    assert lines[-1]["status"]["code"] == grpc.StatusCode.ABORTED.value[0]
    assert lines[-1]["status"]["message"] == "failed after 2 items"


def test_stream_failing_before_the_first_item_gets_its_http_status(http):
    response = http.get("/v1/count/2?failCode=NOT_FOUND&failAfter=0")
    assert response.status_code == 404
    assert response.json()["message"] == "failed after 0 items"
    assert http.get("/v1/count/5000").status_code == 400  # rejected before streaming


def test_sse_stream_with_base64_vectors(http):
    response = http.get("/v1/count/2?float_encoding=base64", headers={"Accept": "text/event-stream"})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse(response)
    assert [kind for kind, _ in events] == ["message", "message", "status"]
    assert events[0][1] == {"n": 1, "big": "1000000000000", "vector": "AACAPwAAAD8="}
    assert events[-1][1]["code"] == 0


def test_sse_stream_error_event(http):
    events = sse(
        http.get("/v1/count/3?failCode=UNAVAILABLE&failAfter=1", headers={"Accept": "text/event-stream"})
    )
    assert events[-1] == ("status", events[-1][1])
    assert events[-1][1]["code"] == grpc.StatusCode.UNAVAILABLE.value[0]


def test_stream_deadline_ends_with_deadline_exceeded(http):
    lines = ndjson(http.get("/v1/count/50?intervalMs=100", headers={"X-Request-Timeout": "0.35"}))
    assert 1 <= len(lines) - 1 < 50
    assert lines[-1]["status"]["code"] == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]


def test_grpc_serves_the_same_stream(echo_gateway):
    call = echo_gateway.channel().unary_stream(
        "/citadel.testing.v1.EchoService/Count",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=echo_pb2.CountResponse.FromString,
    )
    assert [r.n for r in call(echo_pb2.CountRequest(to=3), timeout=30)] == [1, 2, 3]


# -- GraphQL subscriptions over graphql-transport-ws ---------------------------------------------


def ws_url(gateway) -> str:
    return f"ws://127.0.0.1:{gateway.http_port}/graphql"


@contextlib.contextmanager
def session(gateway, payload: dict | None = None):
    with connect(ws_url(gateway), subprotocols=["graphql-transport-ws"], open_timeout=10) as ws:
        ws.send(json.dumps({"type": "connection_init", **({"payload": payload} if payload else {})}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "connection_ack"}
        yield ws


def receive_until_complete(ws, op_id: str) -> list[dict]:
    messages = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        message = json.loads(ws.recv(timeout=20))
        assert message.get("id") == op_id, message
        messages.append(message)
        if message["type"] in ("complete", "error"):
            return messages
    raise AssertionError(f"no complete for {op_id}: {messages}")


def test_subscription_streams_each_item_then_completes(echo_gateway):
    with session(echo_gateway) as ws:
        query = "subscription { count(to: 3) { n big vector vectorBase64 } }"
        ws.send(json.dumps({"id": "s1", "type": "subscribe", "payload": {"query": query}}))
        messages = receive_until_complete(ws, "s1")
    assert [m["type"] for m in messages] == ["next", "next", "next", "complete"]
    first = messages[0]["payload"]["data"]["count"]
    assert first == {"n": 1, "big": "1000000000000", "vector": [1.0, 0.5], "vectorBase64": "AACAPwAAAD8="}


def test_subscription_error_part_way_has_the_grpc_code(echo_gateway):
    with session(echo_gateway) as ws:
        query = 'subscription { count(to: 4, failCode: "RESOURCE_EXHAUSTED", failAfter: 1) { n } }'
        ws.send(json.dumps({"id": "s2", "type": "subscribe", "payload": {"query": query}}))
        messages = receive_until_complete(ws, "s2")
    assert [m["type"] for m in messages] == ["next", "next", "complete"]
    error = messages[1]["payload"]["errors"][0]
    assert error["message"] == "failed after 1 items"
    assert error["extensions"]["code"] == "RESOURCE_EXHAUSTED"
    assert error["extensions"]["status"] == 429


def test_variables_of_the_wrong_type_are_an_error_message_with_a_code(echo_gateway):
    with session(echo_gateway) as ws:
        query = "subscription($to: Int) { count(to: $to) { n } }"
        payload = {"query": query, "variables": {"to": {"not": "a number"}}}
        ws.send(json.dumps({"id": "s5", "type": "subscribe", "payload": payload}))
        messages = receive_until_complete(ws, "s5")
    assert [m["type"] for m in messages] == ["error"]
    [error] = messages[0]["payload"]
    assert "Int cannot represent non-integer value" in error["message"]
    assert error["extensions"] == {"code": "INVALID_ARGUMENT", "status": 400}


def test_subscription_metadata_from_connection_init_and_queries_over_the_socket(echo_gateway):
    with session(echo_gateway, {"Authorization": "Bearer ws-token", "x-tenant": "t9"}) as ws:
        query = 'mutation { echo(id: "w") { metadata { key value } protocol } }'
        ws.send(json.dumps({"id": "q1", "type": "subscribe", "payload": {"query": query}}))
        messages = receive_until_complete(ws, "q1")
    data = messages[0]["payload"]["data"]["echo"]
    metadata = {e["key"]: e["value"] for e in data["metadata"]}
    assert metadata["authorization"] == "Bearer ws-token" and metadata["x-tenant"] == "t9"
    assert data["protocol"] == "graphql"


def test_client_complete_stops_a_subscription_and_ping_is_answered(echo_gateway):
    with session(echo_gateway) as ws:
        query = "subscription { count(to: 1000, intervalMs: 20) { n } }"
        ws.send(json.dumps({"id": "long", "type": "subscribe", "payload": {"query": query}}))
        assert json.loads(ws.recv(timeout=10))["type"] == "next"
        ws.send(json.dumps({"id": "long", "type": "complete"}))
        ws.send(json.dumps({"type": "ping"}))
        for _ in range(100):  # items already in flight may arrive before the pong
            message = json.loads(ws.recv(timeout=10))
            if message == {"type": "pong"}:
                break
            assert message["type"] == "next", message
        else:
            raise AssertionError("no pong")
        with pytest.raises(TimeoutError):
            ws.recv(timeout=0.5)  # the subscription has stopped


def test_invalid_subscription_document_is_an_error_message(echo_gateway):
    with session(echo_gateway) as ws:
        ws.send(json.dumps({"id": "bad", "type": "subscribe", "payload": {"query": "subscription { nope }"}}))
        messages = receive_until_complete(ws, "bad")
    assert messages[-1]["type"] == "error"
    assert "nope" in messages[-1]["payload"][0]["message"]


def test_protocol_violations_close_the_socket_with_its_codes(echo_gateway):
    with connect(ws_url(echo_gateway), subprotocols=["graphql-transport-ws"]) as ws:
        ws.send(json.dumps({"id": "x", "type": "subscribe", "payload": {"query": "{ book { name } }"}}))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 4401
    with session(echo_gateway) as ws:
        ws.send(json.dumps({"type": "connection_init"}))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=10)
        assert ws.close_code == 4429
