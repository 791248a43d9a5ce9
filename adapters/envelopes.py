"""What gRPC-Web and Connect share: length-prefixed messages over HTTP/1.1 and the request's
path to the chain.

Both protocols put a message on the wire as an envelope: one flags byte, a 4-byte big-endian
length, then that many bytes. They differ in what the flags mean (gRPC-Web: 0x80 trailers;
Connect: 0x02 end of stream) and in how a call ends; each protocol's module says that.

A request is served as REST serves one: a Call for the chain, then a pending request whose
body is read (within limits.rest_body_bytes) and decoded only once auth admitted the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import message

from citadel.adapters import compression, json_codec, streaming
from citadel.adapters.compression import gunzip_within, gzip_bytes
from citadel.server.chain import Call, Chain, Handler, PendingRequest
from citadel.server.errors import ApiError
from citadel.server.grpc_server import decode as decode_proto
from citadel.server.methods import MethodSpec

HEADER = struct.Struct(">BI")  # flags, length
COMPRESSED = 0x01  # both protocols: the payload is compressed with the negotiated encoding
# JSON bodies up to this size are decoded on the loop; larger ones in a thread (as REST does).
DECODE_INLINE_BYTES = 256 * 1024
# Request headers that are the protocols' own, not call metadata.
_PROTOCOL_HEADERS = frozenset(
    {
        "host",
        "connection",
        "content-type",
        "content-length",
        "content-encoding",
        "accept",
        "accept-encoding",
        "user-agent",
        "origin",
        "referer",
        "te",
        "x-grpc-web",
        "x-user-agent",
    }
)
_PROTOCOL_PREFIXES = ("grpc-", "connect-", "sec-", "access-control-")

Send = Callable[[dict], Awaitable[None]]
Receive = Callable[[], Awaitable[dict]]


def envelope(flags: int, payload: bytes) -> bytes:
    return HEADER.pack(flags, len(payload)) + payload


def maybe_compressed_envelope(flags: int, payload: bytes, compress_from: int | None) -> bytes:
    """An envelope whose payload is gzip-compressed (flag 0x01) when it is at least
    `compress_from` bytes (server.gzip_min_bytes); None: the client takes no compression."""
    if compress_from is not None and len(payload) >= compress_from:
        return envelope(flags | COMPRESSED, gzip_bytes(payload))
    return envelope(flags, payload)


def message_inflater(encoding: str, limit: int) -> Callable[[bytes], bytes] | None:
    """How a request message flagged compressed in `encoding` is inflated, within `limit`
    (limits.rest_body_bytes, applied to the inflated size); None for identity."""
    if encoding == "identity":
        return None
    return lambda payload: gunzip_within(payload, limit, lambda: body_too_large(limit))


def rpc_metadata(headers: dict[str, str]) -> dict[str, str]:
    """Call metadata from the request headers, as a gRPC server sees a client's: every header
    but the protocol's own, keys lower-case; binary (`-bin`) ones left out as grpc_call does."""
    return {
        key: value
        for key, value in headers.items()
        if key not in _PROTOCOL_HEADERS
        and not key.startswith(_PROTOCOL_PREFIXES)
        and not key.endswith("-bin")
    }


def body_too_large(limit: int) -> ApiError:
    return ApiError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"request body is larger than limits.rest_body_bytes ({limit} bytes)",
    )


def response_too_large(limit: int) -> ApiError:
    return ApiError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"response is larger than limits.rest_response_bytes ({limit} bytes): ask for less per call "
        "(a smaller page_size or limit, with_embedding=false) and page through the rest",
    )


async def read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    """The whole request body within `limit` (gzip inflated as it arrives; an empty body is
    never inflated: Connect forbids it)."""
    return await compression.read_body(
        receive, headers, limit, lambda: body_too_large(limit), inflate_empty=False
    )


def single_envelope(body: bytes, what: str, inflate: Callable[[bytes], bytes] | None = None) -> bytes:
    """The payload of the one message envelope a unary or server-streaming request carries.
    `what` names the body in errors ("gRPC-Web request body"); `inflate` decompresses a payload
    flagged compressed with the encoding the request's headers named (None: identity, where
    the flag is an error)."""
    if len(body) < HEADER.size:
        raise ApiError(
            grpc.StatusCode.INVALID_ARGUMENT, f"{what}: {len(body)} bytes, less than an envelope header"
        )
    flags, length = HEADER.unpack_from(body)
    if flags & COMPRESSED and inflate is None:
        raise ApiError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{what}: the message is flagged compressed but the request names no encoding "
            "(send the encoding header, e.g. gzip, or clear the flag)",
        )
    if flags & ~COMPRESSED:
        raise ApiError(
            grpc.StatusCode.INVALID_ARGUMENT, f"{what}: envelope flags {flags:#04x} on a request message"
        )
    if HEADER.size + length != len(body):
        raise ApiError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{what}: the envelope says {length} bytes but {len(body) - HEADER.size} follow it "
            "(exactly one message is expected)",
        )
    payload = body[HEADER.size :]
    return inflate(payload) if flags & COMPRESSED else payload


async def decode_message(spec: MethodSpec, payload: bytes, as_json: bool) -> message.Message:
    """The request message from its protobuf or proto3 JSON bytes; large ones off the loop."""
    if not as_json:
        return await decode_proto(spec, payload)
    if len(payload) <= DECODE_INLINE_BYTES:
        return _from_json(spec, payload)
    return await asyncio.to_thread(_from_json, spec, payload)


def _from_json(spec: MethodSpec, payload: bytes) -> message.Message:
    msg = spec.request_type()
    if payload.strip():
        json_codec.decode(json_codec.loads(payload), msg)
    return msg


def encode_message(reply: message.Message, as_json: bool, limit: int) -> bytes:
    """The reply's bytes, within limits.rest_response_bytes (`limit`)."""
    if not as_json:
        if reply.ByteSize() > limit:
            raise response_too_large(limit)
        return reply.SerializeToString()
    payload = json_codec.dumps(json_codec.to_json(reply))
    if len(payload) > limit:
        raise response_too_large(limit)
    return payload


class BodyRequest(PendingRequest):
    """A request message in an HTTP body, read and decoded once the chain has admitted the
    caller. `unwrap` takes the message bytes out of the body (an envelope, base64 text ...)."""

    __slots__ = ("spec", "receive", "headers", "limit", "unwrap", "as_json")

    def __init__(
        self,
        spec: MethodSpec,
        receive: Receive,
        headers: dict[str, str],
        limit: int,
        unwrap: Callable[[bytes], bytes],
        as_json: bool,
    ) -> None:
        self.spec = spec
        self.receive = receive
        self.headers = headers
        self.limit = limit
        self.unwrap = unwrap
        self.as_json = as_json

    async def resolve(self) -> message.Message:
        body = await read_body(self.receive, self.headers, self.limit)
        return await decode_message(self.spec, self.unwrap(body), self.as_json)


class KnownMessage(PendingRequest):
    """A request whose bytes are already at hand (a Connect GET's query), inflated (`inflate`,
    when compressed) and decoded after auth."""

    __slots__ = ("spec", "payload", "as_json", "inflate")

    def __init__(
        self,
        spec: MethodSpec,
        payload: bytes,
        as_json: bool,
        inflate: Callable[[bytes], bytes] | None = None,
    ) -> None:
        self.spec = spec
        self.payload = payload
        self.as_json = as_json
        self.inflate = inflate

    async def resolve(self) -> message.Message:
        payload = self.payload
        if self.inflate is not None and payload:  # an empty message is never inflated (Connect)
            payload = self.inflate(payload)
        return await decode_message(self.spec, payload, self.as_json)


async def pump_stream(
    send: Send,
    receive: Receive,
    call: Call,
    iterator: AsyncIterator[Any],
    head: Any,
    frame_item: Callable[[Any], bytes],
    frame_end: Callable[[ApiError | None], bytes],
) -> None:
    """Writes a server stream's body (its response start already sent): each item as
    `frame_item` frames it, then `frame_end(error or None)`. Stops, and closes the stream, when
    the client goes away; the call's deadline bounds every wait for the next item."""

    async def pump() -> None:
        item = head
        error: ApiError | None = None
        try:
            while item is not streaming.END:
                await send({"type": "http.response.body", "body": frame_item(item), "more_body": True})
                item = await streaming.next_item(iterator, call)
        except ApiError as e:
            error = e
        await send({"type": "http.response.body", "body": frame_end(error), "more_body": False})

    async def disconnected() -> None:
        event = await receive()
        while event["type"] != "http.disconnect":
            event = await receive()

    producer = asyncio.ensure_future(pump())
    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if producer.done():
            producer.result()  # a failure of the adapter itself is raised, not dropped
    finally:
        for task in (producer, watcher):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


class RpcApp:
    """What the gRPC-Web and Connect apps share: the specs they serve by gRPC path, each one's
    chain handler (built once), and the bounds and gzip threshold their replies keep to."""

    def __init__(
        self,
        specs: dict[str, MethodSpec],
        chain: Chain,
        max_body_bytes: int,
        max_response_bytes: int,
        gzip_min_bytes: int,
    ):
        self.specs = specs  # gRPC path -> spec
        self._handlers: dict[str, Handler] = {path: chain.handler_for(spec) for path, spec in specs.items()}
        self.max_body_bytes = max_body_bytes  # limits.rest_body_bytes
        self.max_response_bytes = max_response_bytes  # limits.rest_response_bytes
        self.gzip_min_bytes = gzip_min_bytes  # server.gzip_min_bytes
