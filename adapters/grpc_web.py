"""gRPC-Web (github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md) on port 8000, for every
unary and server-streaming RPC, derived from the method specs like REST.

    POST /<package>.<Service>/<Method>
    Content-Type: application/grpc-web[+proto]        binary envelopes
                  application/grpc-web-text[+proto]   the same, base64 (request and response)

The request body is one message envelope. The reply is HTTP 200 with the same content type:
message envelopes, then a trailer envelope (flags 0x80) holding `grpc-status`, `grpc-message`
(percent-encoded) and the call's trailing metadata. A call that fails before its first message
is "trailers-only": grpc-status and grpc-message are response headers and the body is empty.

Deadlines come from `grpc-timeout`, credentials from `Authorization` (or `x-api-key`); every
header that is not the protocol's own is call metadata. Bodies are bounded by
limits.rest_body_bytes, replies by limits.rest_response_bytes.

Compression, gzip or identity (another `grpc-encoding` is UNIMPLEMENTED, and every reply
lists the accepted ones in `grpc-accept-encoding`, as PROTOCOL-HTTP2.md asks): a request
message flagged compressed (0x01) is inflated per `grpc-encoding`, and a whole body sent with
`Content-Encoding: gzip` (PROTOCOL-WEB.md's full-body compression) is inflated as it arrives,
both within limits.rest_body_bytes counted on the inflated size. A client that lists gzip in
`grpc-accept-encoding` gets `grpc-encoding: gzip` and every message of at least
server.gzip_min_bytes compressed (the trailer frame stays plain); otherwise a unary reply of at
least that size is compressed whole by `Content-Encoding` when `Accept-Encoding` allows it, as
browsers decode it themselves.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from urllib.parse import quote

import grpc

from citadel.adapters import metadata, streaming
from citadel.adapters.compression import SUPPORTED_ENCODINGS, accepts_gzip, gzip_bytes, message_encoding
from citadel.adapters.envelopes import (
    BodyRequest,
    RpcApp,
    encode_message,
    envelope,
    maybe_compressed_envelope,
    message_inflater,
    pump_stream,
    rpc_metadata,
    single_envelope,
)
from citadel.server.chain import Call, new_request_id
from citadel.server.errors import ApiError

log = logging.getLogger("citadel.adapters.grpc_web")

TRAILERS = 0x80
BINARY = "application/grpc-web"
TEXT = "application/grpc-web-text"
_CONTENT_TYPES = {
    BINARY: False,
    BINARY + "+proto": False,
    TEXT: True,
    TEXT + "+proto": True,
}
# Padded base64 chunks may follow each other (a client may encode each write on its own).
_BASE64_CHUNK = re.compile(rb"[^=]*=*")
# grpc-message is percent-encoded outside printable ASCII, '%' included (PROTOCOL-HTTP2.md).
_MESSAGE_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
_ACCEPTED = ",".join(SUPPORTED_ENCODINGS).encode()


def is_grpc_web(content_type: str) -> bool:
    return content_type.startswith(BINARY)


def _decode_text(body: bytes) -> bytes:
    try:
        return b"".join(
            base64.b64decode(c, validate=True) for c in _BASE64_CHUNK.findall(b"".join(body.split())) if c
        )
    except (binascii.Error, ValueError):
        raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, "gRPC-Web text request body: not base64") from None


def _message_header(text: str) -> str:
    return quote(text, safe=_MESSAGE_SAFE)


class GrpcWebApp(RpcApp):
    """ASGI app serving gRPC-Web for the specs it is given, looked up by path."""

    async def __call__(self, scope, receive, send) -> None:
        spec = self.specs[scope["path"]]
        headers = metadata.header_map(scope["headers"])
        content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        text = _CONTENT_TYPES.get(content_type)
        reply_type = (TEXT if text else BINARY) + "+proto"
        call: Call | None = None
        try:
            if text is None:
                raise ApiError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"Content-Type {content_type!r}: gRPC-Web is served as application/grpc-web(+proto) "
                    "and application/grpc-web-text(+proto)",
                )
            if scope["method"] != "POST":
                raise ApiError(
                    grpc.StatusCode.UNIMPLEMENTED, f"gRPC-Web calls are POST, not {scope['method']}"
                )
            # An encoding nobody can inflate is refused before the chain runs.
            inflate = message_inflater(
                message_encoding(headers.get("grpc-encoding", ""), "grpc-encoding"), self.max_body_bytes
            )
            message_encoding(headers.get("content-encoding", ""), "Content-Encoding")
            call = Call(method=spec, protocol="grpc-web", metadata=rpc_metadata(headers))
            call.request_id = metadata.request_id_of(headers) or call.request_id
            call.deadline = metadata.deadline_of(headers)

            def unwrap(body: bytes) -> bytes:
                return single_envelope(_decode_text(body) if text else body, "gRPC-Web request body", inflate)

            pending = BodyRequest(spec, receive, headers, self.max_body_bytes, unwrap, as_json=False)
            reply = await self._handlers[spec.path](call, pending)
            head = await streaming.next_item(reply, call) if spec.server_streaming else reply
            if head is streaming.END:
                await self._trailers_only(send, reply_type, call, None, headers)
                return
        except ApiError as e:
            await self._trailers_only(send, reply_type, call, e, headers)
            return
        except Exception:
            log.exception("gRPC-Web request failed (request id %s)", call.request_id if call else "-")
            error = ApiError(
                grpc.StatusCode.INTERNAL, f"internal error (request id {call.request_id if call else '-'})"
            )
            await self._trailers_only(send, reply_type, call, error, headers)
            return

        def encoded(framed: bytes) -> bytes:
            return base64.b64encode(framed) if text else framed

        compress_from = self.gzip_min_bytes if accepts_gzip(headers.get("grpc-accept-encoding", "")) else None

        def message_frame(item) -> bytes:
            return maybe_compressed_envelope(
                0, encode_message(item, False, self.max_response_bytes), compress_from
            )

        def trailer_frame(error: ApiError | None) -> bytes:
            return envelope(TRAILERS, _trailer_block(call, error))

        start_headers = [
            (b"content-type", reply_type.encode()),
            (b"grpc-accept-encoding", _ACCEPTED),
            *_call_headers(call),
        ]
        if compress_from is not None:
            start_headers.append((b"grpc-encoding", b"gzip"))
        if not spec.server_streaming:
            try:
                framed = message_frame(reply)
            except ApiError as e:
                await self._trailers_only(send, reply_type, call, e, headers)
                return
            body = encoded(framed + trailer_frame(None))  # one base64 run in text mode
            if compress_from is None and len(body) >= self.gzip_min_bytes:
                start_headers.append((b"vary", b"Accept-Encoding"))
                if accepts_gzip(headers.get("accept-encoding", "")):
                    body = gzip_bytes(body)
                    start_headers.append((b"content-encoding", b"gzip"))
            start_headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": 200, "headers": start_headers})
            await send({"type": "http.response.body", "body": body})
            return
        await send({"type": "http.response.start", "status": 200, "headers": start_headers})
        await pump_stream(
            send,
            receive,
            call,
            reply,
            head,
            lambda item: encoded(message_frame(item)),
            lambda error: encoded(trailer_frame(error)),
        )

    async def _trailers_only(
        self, send, reply_type: str, call: Call | None, error: ApiError | None, headers
    ) -> None:
        """A reply without messages: its status in the headers, an empty body."""
        code, text = (grpc.StatusCode.OK, "") if error is None else (error.code, error.message)
        request_id = call.request_id if call else metadata.request_id_of(headers) or new_request_id()
        out = [
            (b"content-type", reply_type.encode()),
            (b"grpc-status", str(code.value[0]).encode()),
            (b"grpc-message", _message_header(text).encode()),
            (b"grpc-accept-encoding", _ACCEPTED),
            (b"content-length", b"0"),
        ]
        out += _call_headers(call) if call else [(b"x-request-id", request_id.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": b""})


def _call_headers(call: Call) -> list[tuple[bytes, bytes]]:
    out = [(b"x-request-id", call.request_id.encode("latin-1", "replace"))]
    for key, value in call.response_metadata.items():
        out.append((key.encode("latin-1"), str(value).encode("latin-1", "replace")))
    return out


def _trailer_block(call: Call, error: ApiError | None) -> bytes:
    """The trailer envelope's payload: HTTP/1-style header lines, names lower-case."""
    code, text = (grpc.StatusCode.OK, "") if error is None else (error.code, error.message)
    lines = [f"grpc-status: {code.value[0]}", f"grpc-message: {_message_header(text)}"]
    lines.append(f"x-request-id: {call.request_id}")
    return ("\r\n".join(lines) + "\r\n").encode("latin-1", "replace")
