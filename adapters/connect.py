"""The Connect protocol (connectrpc.com/docs/protocol) on port 8000, for every unary and
server-streaming RPC, derived from the method specs like REST.

Unary:   POST /<package>.<Service>/<Method>, Content-Type application/proto or application/json
         (proto3 JSON); the reply is the bare message with the same content type. An RPC whose
         options say `idempotency_level = NO_SIDE_EFFECTS` is also served as
         GET ?connect=v1&encoding=proto|json&message=...[&base64=1].
Streams: Content-Type application/connect+proto or application/connect+json; the request is one
         envelope, the reply is HTTP 200 with message envelopes and an end-of-stream envelope
         (flags 0x02) holding {"error": ..., "metadata": ...}.

`Connect-Protocol-Version`, when sent, must be 1. `Connect-Timeout-Ms` (or `grpc-timeout`) sets
the deadline. A unary error is the Connect JSON error body ({"code": "not_found", "message": ...,
"details": [...]}) with the HTTP status the spec maps to its code (not_found → 404 ...; the same
table as REST's); a stream's error is in its end-of-stream envelope. Bodies are bounded by
limits.rest_body_bytes, replies by limits.rest_response_bytes.

Compression (gzip or identity; anything else is `unimplemented` naming them): a unary request
body may be sent with Content-Encoding (a GET's message with `compression=gzip`), a stream's
request envelope flagged compressed with Connect-Content-Encoding; either is inflated within
limits.rest_body_bytes counted on the inflated size. Replies of at least server.gzip_min_bytes
are gzip-compressed when the client takes gzip: unary by Content-Encoding (Accept-Encoding, or
else the request's own encoding, as the spec infers), streams envelope by envelope, the
end-of-stream one included (Connect-Accept-Encoding, or else Connect-Content-Encoding).
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from urllib.parse import parse_qsl

import grpc
from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2

from citadel.adapters import json_codec, metadata, streaming
from citadel.adapters.compression import (
    SUPPORTED_ENCODINGS,
    accepts_gzip,
    gzip_bytes,
    message_encoding,
)
from citadel.adapters.envelopes import (
    BodyRequest,
    KnownMessage,
    RpcApp,
    encode_message,
    maybe_compressed_envelope,
    message_inflater,
    pump_stream,
    rpc_metadata,
    single_envelope,
)
from citadel.adapters.errors import HTTP_STATUS
from citadel.server.chain import Call, new_request_id
from citadel.server.errors import ApiError
from citadel.server.methods import MethodSpec

log = logging.getLogger("citadel.adapters.connect")

END_STREAM = 0x02
UNARY_TYPES = {"application/proto": False, "application/json": True}
STREAM_TYPES = {"application/connect+proto": False, "application/connect+json": True}
_MAX_TIMEOUT_DIGITS = 10  # the spec's bound on Connect-Timeout-Ms
_REQUEST_INFO = "google.rpc.RequestInfo"
_ACCEPTED = ",".join(e for e in SUPPORTED_ENCODINGS if e != "identity").encode()


def is_connect(method: str, content_type: str) -> bool:
    return method == "GET" or content_type in UNARY_TYPES or content_type in STREAM_TYPES


def code_name(code: grpc.StatusCode) -> str:
    """The Connect name of a gRPC code: lower snake case, CANCELLED spelt `canceled`."""
    return "canceled" if code is grpc.StatusCode.CANCELLED else code.name.lower()


def no_side_effects(spec: MethodSpec) -> bool:
    return spec.descriptor.GetOptions().idempotency_level == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS


def error_json(error: ApiError, request_id: str) -> dict:
    info = error_details_pb2.RequestInfo(request_id=request_id).SerializeToString()
    detail = {"type": _REQUEST_INFO, "value": base64.b64encode(info).rstrip(b"=").decode()}
    return {"code": code_name(error.code), "message": error.message, "details": [detail]}


def deadline_of(headers: dict[str, str]) -> float | None:
    """From Connect-Timeout-Ms (at most 10 digits), else gRPC's own timeout headers."""
    given = headers.get("connect-timeout-ms")
    if given is None:
        return metadata.deadline_of(headers)
    if not (given.isdigit() and len(given) <= _MAX_TIMEOUT_DIGITS):
        raise ApiError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Connect-Timeout-Ms header: {given!r} is not a whole number of milliseconds (at most 10 digits)",
        )
    return time.monotonic() + int(given) / 1000


class ConnectApp(RpcApp):
    """ASGI app serving the Connect protocol for the specs it is given, looked up by path."""

    async def __call__(self, scope, receive, send) -> None:
        spec = self.specs[scope["path"]]
        headers = metadata.header_map(scope["headers"])
        content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        if spec.server_streaming:
            await self._stream(spec, content_type, scope, receive, send, headers)
        else:
            await self._unary(spec, content_type, scope, receive, send, headers)

    def _call(self, spec: MethodSpec, headers: dict[str, str]) -> Call:
        version = headers.get("connect-protocol-version")
        if version is not None and version != "1":
            raise ApiError(
                grpc.StatusCode.INVALID_ARGUMENT, f"Connect-Protocol-Version header: {version!r} is not 1"
            )
        # An encoding nobody can inflate is refused before the chain runs.
        if spec.server_streaming:
            message_encoding(headers.get("connect-content-encoding", ""), "Connect-Content-Encoding")
        message_encoding(headers.get("content-encoding", ""), "Content-Encoding")
        call = Call(method=spec, protocol="connect", metadata=rpc_metadata(headers))
        call.request_id = metadata.request_id_of(headers) or call.request_id
        call.deadline = deadline_of(headers)
        return call

    def _pending(
        self, spec: MethodSpec, scope, receive, headers: dict[str, str], as_json: bool, stream: bool
    ):
        if scope["method"] == "GET":
            return self._from_query(spec, scope)
        if stream:
            encoding = message_encoding(
                headers.get("connect-content-encoding", ""), "Connect-Content-Encoding"
            )
            inflate = message_inflater(encoding, self.max_body_bytes)
            return BodyRequest(
                spec,
                receive,
                headers,
                self.max_body_bytes,
                lambda body: single_envelope(body, "Connect request body", inflate),
                as_json,
            )
        return BodyRequest(spec, receive, headers, self.max_body_bytes, lambda body: body, as_json)

    def _from_query(self, spec: MethodSpec, scope) -> KnownMessage:
        """A unary GET: the message, its encoding and base64 flag are query parameters."""
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        encoding = params.get("encoding", "")
        if encoding not in ("proto", "json"):
            raise ApiError(
                grpc.StatusCode.INVALID_ARGUMENT, f"encoding: {encoding!r} is not one of 'proto', 'json'"
            )
        compression = message_encoding(params.get("compression", ""), "compression parameter")
        raw = params.get("message", "")
        if len(raw) > self.max_body_bytes:
            raise ApiError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"message parameter is larger than limits.rest_body_bytes ({self.max_body_bytes} bytes)",
            )
        if params.get("base64") == "1":
            try:
                payload = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
            except (binascii.Error, ValueError):
                raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, "message: not URL-safe base64") from None
        else:
            payload = raw.encode("utf-8", "surrogateescape")
        inflate = message_inflater(compression, self.max_body_bytes)
        return KnownMessage(spec, payload, encoding == "json", inflate)

    async def _unary(self, spec: MethodSpec, content_type: str, scope, receive, send, headers) -> None:
        call: Call | None = None
        as_json = True
        try:
            if scope["method"] == "GET":
                if not no_side_effects(spec):
                    await _plain(send, 405, b"", [(b"allow", b"POST")])
                    return
                as_json = (
                    dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))).get("encoding")
                    == "json"
                )
            elif scope["method"] != "POST":
                await _plain(send, 405, b"", [(b"allow", b"POST")])
                return
            elif content_type not in UNARY_TYPES:
                await _unsupported(send, content_type, UNARY_TYPES)
                return
            else:
                as_json = UNARY_TYPES[content_type]
            call = self._call(spec, headers)
            pending = self._pending(spec, scope, receive, headers, as_json, stream=False)
            reply = await self._handlers[spec.path](call, pending)
            payload = encode_message(reply, as_json, self.max_response_bytes)
        except ApiError as e:
            await self._unary_error(send, e, call, headers)
            return
        except Exception:
            request_id = call.request_id if call else "-"
            log.exception("Connect request failed (request id %s)", request_id)
            error = ApiError(grpc.StatusCode.INTERNAL, f"internal error (request id {request_id})")
            await self._unary_error(send, error, call, headers)
            return
        media = b"application/json" if as_json else b"application/proto"
        out = [(b"content-type", media), (b"accept-encoding", _ACCEPTED), *_call_headers(call)]
        if len(payload) >= self.gzip_min_bytes:
            out.append((b"vary", b"Accept-Encoding"))
            if _unary_takes_gzip(scope, headers):
                payload = gzip_bytes(payload)
                out.append((b"content-encoding", b"gzip"))
        out.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": payload})

    async def _unary_error(self, send, error: ApiError, call: Call | None, headers) -> None:
        request_id = call.request_id if call else metadata.request_id_of(headers) or new_request_id()
        extra = _call_headers(call) if call else [(b"x-request-id", request_id.encode())]
        body = json_codec.dumps(error_json(error, request_id))
        await _plain(
            send, HTTP_STATUS.get(error.code, 500), body, [(b"content-type", b"application/json"), *extra]
        )

    async def _stream(self, spec: MethodSpec, content_type: str, scope, receive, send, headers) -> None:
        if scope["method"] != "POST":
            await _plain(send, 405, b"", [(b"allow", b"POST")])
            return
        if content_type not in STREAM_TYPES:
            await _unsupported(send, content_type, STREAM_TYPES)
            return
        as_json = STREAM_TYPES[content_type]
        call: Call | None = None
        reply = None
        head = streaming.END
        error: ApiError | None = None
        try:
            call = self._call(spec, headers)
            pending = self._pending(spec, scope, receive, headers, as_json, stream=True)
            reply = await self._handlers[spec.path](call, pending)
            head = await streaming.next_item(reply, call)
        except ApiError as e:
            error = e
        except Exception:
            request_id = call.request_id if call else "-"
            log.exception("Connect stream failed (request id %s)", request_id)
            error = ApiError(grpc.StatusCode.INTERNAL, f"internal error (request id {request_id})")
        request_id = call.request_id if call else metadata.request_id_of(headers) or new_request_id()

        compress_from = self.gzip_min_bytes if _stream_takes_gzip(headers) else None

        def frame_item(item) -> bytes:
            payload = encode_message(item, as_json, self.max_response_bytes)
            return maybe_compressed_envelope(0, payload, compress_from)

        def frame_end(failure: ApiError | None) -> bytes:
            end: dict = {"metadata": {"x-request-id": [request_id]}}
            if failure is not None:
                end["error"] = error_json(failure, request_id)
            return maybe_compressed_envelope(END_STREAM, json_codec.dumps(end), compress_from)

        start = [
            (b"content-type", content_type.encode()),
            (b"connect-accept-encoding", _ACCEPTED),
            *(_call_headers(call) if call else []),
        ]
        if compress_from is not None:
            start.append((b"connect-content-encoding", b"gzip"))
        await send({"type": "http.response.start", "status": 200, "headers": start})
        if error is not None or head is streaming.END:
            await send({"type": "http.response.body", "body": frame_end(error)})
            return
        await pump_stream(send, receive, call, reply, head, frame_item, frame_end)


def _unary_takes_gzip(scope, headers: dict[str, str]) -> bool:
    """Accept-Encoding when sent, else whatever encoding the request itself used (the spec's
    inference; a GET's is its `compression` parameter)."""
    if "accept-encoding" in headers:
        return accepts_gzip(headers["accept-encoding"])
    if scope["method"] == "GET":
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        return params.get("compression", "").strip().lower() in ("gzip", "x-gzip")
    return headers.get("content-encoding", "").strip().lower() in ("gzip", "x-gzip")


def _stream_takes_gzip(headers: dict[str, str]) -> bool:
    """Connect-Accept-Encoding when sent, else the request's Connect-Content-Encoding."""
    if "connect-accept-encoding" in headers:
        return accepts_gzip(headers["connect-accept-encoding"])
    return headers.get("connect-content-encoding", "").strip().lower() in ("gzip", "x-gzip")


def _call_headers(call: Call) -> list[tuple[bytes, bytes]]:
    out = [(b"x-request-id", call.request_id.encode("latin-1", "replace"))]
    for key, value in call.response_metadata.items():
        out.append((key.encode("latin-1"), str(value).encode("latin-1", "replace")))
    return out


async def _unsupported(send, content_type: str, served: dict) -> None:
    """415, as the spec asks of a content type the server does not speak."""
    body = f"Content-Type {content_type!r} is not one of {', '.join(served)}".encode()
    await _plain(
        send,
        415,
        body,
        [(b"content-type", b"text/plain; charset=utf-8"), (b"accept-post", ", ".join(served).encode())],
    )


async def _plain(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    out = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})
