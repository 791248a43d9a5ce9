"""gzip on port 8000: replies compressed when the client accepts it, request bodies decompressed.

Replies: `gzip_responses(app, min_bytes)` wraps an ASGI app. A reply sent in one piece (REST,
GraphQL, /openapi.json ...) of at least `min_bytes` (server.gzip_min_bytes) is gzip-compressed
when `Accept-Encoding` allows gzip (`gzip;q=0` or `identity` only does not), and every such
reply says `Vary: Accept-Encoding`. Streams (NDJSON, Server-Sent Events, files sent in parts)
are left as they are: each message must reach the client when it is written, and a stream of
progress lines is small.

Requests: `RequestDecoder.for_headers(...)` reads `Content-Encoding` (none, `identity` or
`gzip`; anything else is 415) and decompresses the body piece by piece as it arrives, holding
the decompressed size to the body limit (413 naming the setting): 10 MB of zeros sent as 10 KB
of gzip costs the gateway no more than the limit. The adapters call it only after the caller is
authenticated, like every other body read.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

import grpc

from citadel.adapters.errors import HttpError
from citadel.server.errors import ApiError

# Output of one decompress call: a body is inflated in steps of this size, never all at once.
_INFLATE_STEP = 256 * 1024
_STREAMED = (b"application/x-ndjson", b"text/event-stream")


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value allows gzip: `gzip` or `*` with a q above 0, the
    explicit `gzip` deciding over `*` (RFC 9110 12.5.3)."""
    star = None
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        coding = coding.strip().lower()
        if coding not in ("gzip", "x-gzip", "*"):
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if coding == "*":
            star = q > 0
        else:
            return q > 0
    return bool(star)


def gzip_responses(app, min_bytes: int):
    """`app` with its one-piece replies of at least `min_bytes` gzip-compressed for clients
    that accept it. Also for the gRPC-Web and Connect adapters: wrap their ASGI app the same way
    (their streamed replies pass through as they are)."""

    async def compressed(scope, receive, send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        wanted = False
        for key, value in scope["headers"]:
            if key == b"accept-encoding":
                wanted = accepts_gzip(value.decode("latin-1"))
                break
        await app(scope, receive, _GzipSend(send, min_bytes, wanted))

    return compressed


class _GzipSend:
    """The `send` of one request: holds the response start until the first body message shows
    whether the reply comes in one piece, then compresses it or passes everything through."""

    __slots__ = ("send", "min_bytes", "wanted", "start", "passthrough")

    def __init__(self, send, min_bytes: int, wanted: bool) -> None:
        self.send = send
        self.min_bytes = min_bytes
        self.wanted = wanted
        self.start: dict | None = None
        self.passthrough = False

    async def __call__(self, message: dict) -> None:
        kind = message["type"]
        if self.passthrough:
            await self.send(message)
        elif kind == "http.response.start":
            headers = message.get("headers", ())
            if any(
                (k == b"content-encoding") or (k == b"content-type" and v.startswith(_STREAMED))
                for k, v in headers
            ):
                self.passthrough = True  # already encoded, or a stream
                await self.send(message)
            else:
                self.start = message
        elif kind == "http.response.body" and self.start is not None:
            start, self.start = self.start, None
            body = message.get("body", b"")
            if message.get("more_body", False):  # sent in parts: a stream, left alone
                self.passthrough = True
                await self.send(start)
                await self.send(message)
                return
            headers = [(k, v) for k, v in start.get("headers", ()) if k != b"vary"]
            vary = [v for k, v in start.get("headers", ()) if k == b"vary"]
            if len(body) >= self.min_bytes:
                headers.append((b"vary", b", ".join([*vary, b"Accept-Encoding"])))
                if self.wanted:
                    body = gzip.compress(body, compresslevel=6, mtime=0)
                    headers = [(k, v) for k, v in headers if k != b"content-length"]
                    headers += [(b"content-encoding", b"gzip"), (b"content-length", str(len(body)).encode())]
            else:
                headers += [(b"vary", v) for v in vary]
            await self.send({**start, "headers": headers})
            await self.send({"type": "http.response.body", "body": body})
        else:
            await self.send(message)


class RequestDecoder:
    """Decompresses one request body as its pieces arrive, within `limit` decompressed bytes;
    `too_large()` makes the error past it (413 naming the setting)."""

    def __init__(self, limit: int, too_large: Callable[[], Exception]) -> None:
        self.limit = limit
        self.too_large = too_large
        self.size = 0
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing

    @classmethod
    def for_headers(
        cls, headers: dict[str, str], limit: int, too_large: Callable[[], Exception]
    ) -> RequestDecoder | None:
        """A decoder for the body's Content-Encoding; None when it is not encoded."""
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding in ("", "identity"):
            return None
        if encoding in ("gzip", "x-gzip"):
            return cls(limit, too_large)
        raise HttpError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"Content-Encoding {encoding[:40]!r} is not supported: send gzip or identity",
            415,
        )

    def feed(self, data: bytes) -> bytes:
        """The decompressed bytes of the next piece of the body."""
        out = []
        while data:
            # Never more than one byte past the limit, whatever the ratio of the input.
            room = min(_INFLATE_STEP, self.limit - self.size + 1)
            try:
                chunk = self._inflate.decompress(data, room)
            except zlib.error as e:
                raise _bad_gzip(e) from None
            self.size += len(chunk)
            if self.size > self.limit:
                raise self.too_large()
            out.append(chunk)
            data = self._inflate.unconsumed_tail
            if self._inflate.eof:
                if self._inflate.unused_data or data:
                    raise _bad_gzip("data after the end of the gzip stream")
                break
        return b"".join(out)

    def finish(self) -> None:
        """The body has ended: it must have ended the gzip stream too."""
        if not self._inflate.eof:
            raise _bad_gzip("the gzip stream is cut short")


def _bad_gzip(reason) -> HttpError:
    return HttpError(grpc.StatusCode.INVALID_ARGUMENT, f"request body is not valid gzip: {reason}", 400)


# gRPC-Web and Connect: the encodings they negotiate in their own headers, message by message.
SUPPORTED_ENCODINGS = ("gzip", "identity")


def gzip_bytes(data: bytes) -> bytes:
    """`data` as one gzip member (level 6, no timestamp: the same input gives the same bytes)."""
    return gzip.compress(data, compresslevel=6, mtime=0)


def message_encoding(value: str, header: str) -> str:
    """`gzip` or `identity` from a protocol's encoding header (grpc-encoding,
    Connect-Content-Encoding, the `compression` query parameter) named `header`; any other
    value is UNIMPLEMENTED listing the supported ones, as both protocols ask."""
    encoding = value.strip().lower() or "identity"
    if encoding == "x-gzip":
        encoding = "gzip"
    if encoding not in SUPPORTED_ENCODINGS:
        raise HttpError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{header} {encoding[:40]!r} is not supported: send {' or '.join(SUPPORTED_ENCODINGS)}",
            415,
        )
    return encoding


def gunzip_within(data: bytes, limit: int, too_large: Callable[[], Exception]) -> bytes:
    """One whole gzip payload (a compressed message) inflated step by step, refused with
    `too_large()` as soon as it passes `limit` bytes: a zip bomb costs no more than the limit."""
    decoder = RequestDecoder(limit, too_large)
    out = decoder.feed(data)
    decoder.finish()
    return out


async def read_body(
    receive,
    headers: dict[str, str],
    limit: int,
    too_large: Callable[[], Exception],
    inflate_empty: bool = True,
) -> bytes:
    """An ASGI request's whole body, refused (`too_large()`) as soon as it is known to exceed
    `limit`: by its Content-Length before reading anything, else while reading. A body sent
    with `Content-Encoding: gzip` is inflated as it arrives, the limit holding for both sizes;
    an empty one is inflated only when `inflate_empty` (Connect forbids inflating it)."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large()
    decoder = RequestDecoder.for_headers(headers, limit, too_large)
    body = bytearray()
    received = 0
    more = True
    while more:
        event = await receive()
        if event["type"] == "http.disconnect":
            raise ApiError(grpc.StatusCode.CANCELLED, "client disconnected")
        chunk = event.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise too_large()
        body += chunk if decoder is None else decoder.feed(chunk)
        if len(body) > limit:
            raise too_large()
        more = event.get("more_body", False)
    if decoder is not None and (received or inflate_empty):
        decoder.finish()
    return bytes(body)
