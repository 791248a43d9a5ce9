"""Server-streaming RPCs over HTTP: NDJSON or Server-Sent Events, chosen by `Accept`.

    Accept: application/x-ndjson (default)   one JSON object per line:
        {"result": {...}}  ...  {"status": {"code": 0, "message": "", "details": []}}
    Accept: text/event-stream                 one event per message:
        data: {...}        ...  event: status / data: {"code": 0, ...}

The stream always ends with a final google.rpc.Status (code 0 on success), so a client can
tell a complete stream from a cut one. The first message is awaited before the response
starts: an error raised before anything was sent still gets its own HTTP status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from citadel.adapters.errors import status_json
from citadel.adapters.json_codec import dumps
from citadel.server.chain import Call
from citadel.server.errors import ApiError
from citadel.server.interceptors.errors import as_api_error

log = logging.getLogger("citadel.adapters.streaming")

NDJSON = "application/x-ndjson"
SSE = "text/event-stream"
END = object()  # returned by next_item when the stream is over

Send = Callable[[dict], Awaitable[None]]
Receive = Callable[[], Awaitable[dict]]


def media_type(accept: str) -> str:
    return SSE if SSE in accept else NDJSON


async def next_item(iterator: AsyncIterator[Any], call: Call) -> Any:
    """The next item (or END), within the call's deadline. Failures come out as ApiError."""
    remaining = call.time_remaining()
    try:
        if remaining is None:
            return await anext(iterator, END)
        if remaining <= 0:
            raise TimeoutError
        async with asyncio.timeout(remaining):
            return await anext(iterator, END)
    except Exception as e:  # the chain's errors interceptor saw only the stream's start
        error = as_api_error(e, call)
        if error is e:
            raise
        raise error from None


def _frame(kind: str, payload: Any, media: str) -> bytes:
    if media == SSE:
        event = b"" if kind == "result" else f"event: {kind}\n".encode()
        return event + b"data: " + dumps(payload) + b"\n\n"
    return dumps({kind: payload}) + b"\n"


async def send_stream(
    send: Send,
    receive: Receive,
    call: Call,
    iterator: AsyncIterator[Any],
    head: Any,
    encode: Callable[[Any], Any],
    media: str,
    headers: list[tuple[bytes, bytes]],
) -> None:
    """Writes the stream whose first item `head` was already fetched, then the final status."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", media.encode()), (b"cache-control", b"no-cache"), *headers],
        }
    )

    async def pump() -> None:
        item = head
        status = status_json(grpc.StatusCode.OK, "", call.request_id)
        try:
            while item is not END:
                await send(
                    {
                        "type": "http.response.body",
                        "body": _frame("result", encode(item), media),
                        "more_body": True,
                    }
                )
                item = await next_item(iterator, call)
        except ApiError as e:
            status = status_json(e.code, e.message, call.request_id)
        await send(
            {"type": "http.response.body", "body": _frame("status", status, media), "more_body": False}
        )

    async def disconnected() -> None:
        """Returns when the client goes away (other ASGI messages are read and dropped)."""
        message = await receive()
        while message["type"] != "http.disconnect":
            message = await receive()

    producer = asyncio.ensure_future(pump())
    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({producer, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (producer, watcher):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
