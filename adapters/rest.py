"""REST/JSON transcoding: an ASGI app routing HTTP requests to the RPCs' bindings.

Each request is matched against every binding's path template (most specific first) and run
through `chain.handler_for(spec)` in this process, exactly as the gRPC server runs it: same
interceptors, same statuses, no loopback hop. The chain gets a pending request: the body is
read and decoded only after authentication, so a caller without credentials costs nothing.

    unknown path → 404, known path with another method → 405 with Allow, no credentials → 401,
    body over limits.rest_body_bytes → 413, bad JSON or field → 400 (bodies are read as JSON
    whatever their Content-Type, as grpc-gateway does, so `curl -d` works), a reply over
    limits.rest_response_bytes → 429 RESOURCE_EXHAUSTED saying to page,
    any failure → google.rpc.Status JSON with the status from errors.HTTP_STATUS.

`?float_encoding=base64` (or header `X-Float-Encoding: base64`) writes every `repeated float`
of the response as base64 little-endian float32; requests accept that form at any time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from urllib.parse import quote

import grpc
from google.protobuf import message
from starlette.types import ASGIApp

from citadel.adapters import json_codec, metadata, query, streaming
from citadel.adapters.bindings import Binding, bindings_for
from citadel.adapters.compression import read_body
from citadel.adapters.decoder_process import CHILD_DECODE_BYTES, DecoderProcess
from citadel.adapters.errors import HttpError, http_status, status_json
from citadel.server.chain import Call, Chain, Handler, PendingRequest, new_request_id
from citadel.server.errors import ApiError
from citadel.server.methods import MethodSpec

JSON = b"application/json"
# Bodies up to this size are decoded on the loop (a few ms at most); larger ones in a thread.
DECODE_INLINE_BYTES = 256 * 1024
log = logging.getLogger("citadel.adapters.rest")


class RestRouter:
    """ASGI app serving every binding of every spec."""

    def __init__(
        self,
        specs: Sequence[MethodSpec],
        chain: Chain,
        max_body_bytes: int,
        max_response_bytes: int,
        fallback: ASGIApp | None = None,
    ) -> None:
        self.bindings: list[Binding] = sorted(
            (b for spec in specs for b in bindings_for(spec)), key=lambda b: b.template.specificity
        )
        self._handlers: dict[str, Handler] = {spec.path: chain.handler_for(spec) for spec in specs}
        self.max_body_bytes = max_body_bytes  # limits.rest_body_bytes
        self.max_response_bytes = max_response_bytes  # limits.rest_response_bytes
        self.decoder = DecoderProcess()  # bodies too large to parse while holding the GIL
        # Serves the paths no binding matches (the fixed pages), answering their 404 itself.
        self.fallback = fallback

    def match(self, method: str, raw_path: str) -> tuple[Binding, dict[str, str]]:
        allowed: list[str] = []
        for binding in self.bindings:
            values = binding.template.match(raw_path)
            if values is None:
                continue
            if binding.http_method == method:
                return binding, values
            if binding.http_method not in allowed:
                allowed.append(binding.http_method)
        if allowed:
            allow = ", ".join(sorted(allowed))
            raise HttpError(
                grpc.StatusCode.UNIMPLEMENTED,
                f"method {method} is not allowed on {raw_path}; allowed: {allow}",
                405,
                {"allow": allow},
            )
        raise HttpError(grpc.StatusCode.NOT_FOUND, f"no route for {method} {raw_path}", 404)

    async def __call__(self, scope, receive, send) -> None:
        raw_path = scope.get("raw_path")
        path = raw_path.decode("latin-1") if raw_path else quote(scope["path"])
        try:
            binding, path_values = self.match(scope["method"], path)
        except HttpError as e:
            if e.http_status == 404 and self.fallback is not None:
                await self.fallback(scope, receive, send)  # not an RPC: the fixed pages
            else:
                await _send_error(send, e, None, metadata.header_map(scope["headers"]))
            return
        await self._serve(binding, path_values, scope, receive, send)

    async def _serve(self, binding: Binding, path_values: dict[str, str], scope, receive, send) -> None:
        headers = metadata.header_map(scope["headers"])
        request_id = metadata.request_id_of(headers) or new_request_id()
        call: Call | None = None
        try:
            call = metadata.http_call(binding.spec, "rest", headers)
            call.request_id = request_id
            # The body is read and decoded only once the chain has admitted the caller: an
            # unauthenticated request is answered without reading it (uvicorn discards it).
            pending = RestRequest(self, binding, path_values, scope, receive, headers)
            reply = await self._handlers[binding.spec.path](call, pending)
            response_headers = _response_headers(call)
            if binding.spec.server_streaming:
                head = await streaming.next_item(reply, call)
                media = streaming.media_type(headers.get("accept", ""))
                await streaming.send_stream(
                    send,
                    receive,
                    call,
                    reply,
                    head,
                    lambda item: binding.response_value(item, pending.encoder),
                    media,
                    response_headers,
                )
                return
            payload = self._encode_reply(binding, reply, pending.encoder)
            await _send(send, 200, payload, response_headers)
        except ApiError as e:
            if call is None:
                headers["x-request-id"] = request_id
            await _send_error(send, e, call, headers)
        except Exception:
            # A bug in the adapter itself: still a Status body, never a bare 500 page. No
            # client input reaches here (bad input is an ApiError), and log lines are bounded.
            log.exception("REST request failed (request id %s)", request_id)
            message = f"internal error (request id {request_id})"
            payload = json_codec.dumps(status_json(grpc.StatusCode.INTERNAL, message, request_id))
            await _send(send, 500, payload, [(b"x-request-id", request_id.encode())])

    def _encode_reply(self, binding: Binding, reply, encoder: json_codec.Encoder) -> bytes:
        """The reply's JSON, unless it exceeds limits.rest_response_bytes. A reply whose
        protobuf form is larger than the limit has its floats counted first: each takes at
        least 4 characters of JSON, so one that cannot fit is refused before a byte of JSON
        is built (1,000 hits of 65,536 dimensions would be ~700 MB)."""
        limit = self.max_response_bytes
        whole = not binding.response_body  # else only one field of the reply is written
        if whole and reply.ByteSize() > limit and 4 * _float_count(reply) > limit:
            raise _response_too_large(limit)
        payload = json_codec.dumps(binding.response_value(reply, encoder))
        if len(payload) > limit:
            raise _response_too_large(limit)
        return payload

    async def read_body(self, receive, headers: dict[str, str]) -> bytes:
        """The request body within limits.rest_body_bytes (413 naming it); a gzip body
        (Content-Encoding) is decompressed as it arrives, the limit holding for both sizes."""
        limit = self.max_body_bytes
        return await read_body(receive, headers, limit, lambda: _too_large(limit))


class RestRequest(PendingRequest):
    """An HTTP request whose message is made once the caller is admitted: query parameters,
    then the body, read within limits.rest_body_bytes and decoded in a thread when large, so
    other callers keep being served meanwhile."""

    def __init__(self, router: RestRouter, binding: Binding, path_values, scope, receive, headers) -> None:
        self.router = router
        self.binding = binding
        self.path_values = path_values
        self.scope = scope
        self.receive = receive
        self.headers = headers
        self.encoder = json_codec.Encoder()  # until resolved: errors have no floats to write

    async def resolve(self) -> message.Message:
        pairs = query.parse(self.scope.get("query_string", b""))
        self.encoder = json_codec.Encoder(floats_base64=_floats_base64(pairs, self.headers))
        body = await self.router.read_body(self.receive, self.headers)
        if len(body) <= DECODE_INLINE_BYTES:
            return self.binding.build_request(self.path_values, pairs, body)
        if len(body) > CHILD_DECODE_BYTES and DecoderProcess.serves(self.binding):
            return await self.router.decoder.build_request(self.binding, self.path_values, pairs, body)
        return await asyncio.to_thread(self.binding.build_request, self.path_values, pairs, body)


def _float_count(msg: message.Message) -> int:
    """How many values the `repeated float` fields of `msg` hold, at any depth."""
    count = 0
    for field, value in msg.ListFields():
        if field.cpp_type == json_codec.FD.CPPTYPE_MESSAGE:
            if json_codec.is_map(field):
                value = value.values()
            elif not field.is_repeated:
                value = (value,)
            count += sum(_float_count(item) for item in value if isinstance(item, message.Message))
        elif json_codec.is_float_list(field):
            count += len(value)
    return count


def _too_large(limit: int) -> HttpError:
    return HttpError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"request body is larger than limits.rest_body_bytes ({limit} bytes)",
        413,
    )


def _response_too_large(limit: int) -> ApiError:
    # RESOURCE_EXHAUSTED, as gRPC answers a reply over its max_send_message_length.
    return ApiError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"response is larger than limits.rest_response_bytes ({limit} bytes): ask for less per call "
        "(a smaller page_size or limit, with_embedding=false) and page through the rest",
    )


def _floats_base64(pairs: list[tuple[str, str]], headers: dict[str, str]) -> bool:
    choice = headers.get("x-float-encoding") or None  # an empty header is no choice
    for key, value in pairs:
        if key == query.FLOAT_ENCODING:
            choice = value  # an empty ?float_encoding= is not one of the two
    if choice is None or choice == "json":
        return False
    if choice == "base64":
        return True
    raise ApiError(
        grpc.StatusCode.INVALID_ARGUMENT, f"float_encoding: {choice!r} is not one of 'json', 'base64'"
    )


async def not_found(scope, receive, send) -> None:
    """ASGI app answering a path that neither a binding nor a page matches (the pages' default):
    404 with a Status body, as the router answers a path it knows with another method."""
    error = HttpError(
        grpc.StatusCode.NOT_FOUND, f"no route for {scope.get('method', 'GET')} {scope.get('path', '')}", 404
    )
    await _send_error(send, error, None, metadata.header_map(scope.get("headers", [])))


async def _send_error(send, e: ApiError, call: Call | None, headers: dict[str, str]) -> None:
    request_id = call.request_id if call is not None else metadata.request_id_of(headers) or new_request_id()
    extra = _response_headers(call) if call is not None else [(b"x-request-id", request_id.encode())]
    if isinstance(e, HttpError):
        extra += [(k.encode(), v.encode()) for k, v in e.headers.items()]
    payload = json_codec.dumps(status_json(e.code, e.message, request_id))
    await _send(send, http_status(e), payload, extra)


def _response_headers(call: Call) -> list[tuple[bytes, bytes]]:
    out = [(b"x-request-id", call.request_id.encode("latin-1", "replace"))]
    for key, value in call.response_metadata.items():
        out.append((key.encode("latin-1"), str(value).encode("latin-1", "replace")))
    return out


async def _send(send, status: int, payload: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", JSON), (b"content-length", str(len(payload)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": payload})
