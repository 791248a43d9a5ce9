"""GraphQL over WebSocket at /graphql, speaking graphql-transport-ws (the graphql-ws protocol).

    client: connection_init {payload?}    server: connection_ack
    client: subscribe {id, payload}       server: next {id, payload} ... complete {id}
    client: complete {id}                 (the server stops that operation)
    either: ping / pong

Subscriptions run server-streaming RPCs; queries and mutations answer one `next`. Metadata
for the calls comes from the upgrade request's headers plus the connection_init payload (a
browser cannot set headers on a WebSocket, so `{"Authorization": "Bearer ..."}` goes there).
A stream that fails part way sends its error (with extensions.code and .status) in a `next`,
then `complete`. Protocol violations close the socket with the protocol's 44xx codes.

Bounds: connection_init must carry valid credentials (with authentication on), otherwise the
socket closes with 4403 before any operation runs; a message over limits.graphql_body_bytes
closes it with 1009. Operations running at once (every `subscribe`, whatever its operation
type) are capped per connection (limits.ws_subscriptions_per_connection) and per key across
this process's connections (limits.ws_subscriptions_per_key; with authentication off there is
no key to count by); one over a cap gets an `error` message naming it, and the connection stays.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import grpc
import orjson
from graphql import ExecutionResult, GraphQLError, OperationType, subscribe
from starlette.websockets import WebSocket, WebSocketDisconnect

from citadel.adapters import metadata
from citadel.adapters.errors import HTTP_STATUS
from citadel.adapters.graphql_app import GraphqlApp, Prepared
from citadel.server.auth.principal import ANONYMOUS, Principal
from citadel.server.chain import new_request_id
from citadel.server.errors import ApiError

PROTOCOL = "graphql-transport-ws"
INIT_TIMEOUT_SECONDS = 10.0
MAX_CLOSE_REASON = 123  # bytes a WebSocket close frame's reason may hold


class GraphqlSockets:
    """Serves graphql-transport-ws sessions and counts each key's running operations across them."""

    def __init__(self, app: GraphqlApp) -> None:
        self.app = app
        self.per_key: dict[str, int] = {}  # principal subject ("key:<id>", "jwt:<sub>") -> running

    async def serve(self, websocket: WebSocket) -> None:
        if PROTOCOL not in websocket.scope.get("subprotocols", []):
            await websocket.accept()
            await websocket.close(4406, "Subprotocol not acceptable")
            return
        await websocket.accept(subprotocol=PROTOCOL)
        await Session(websocket, self).run()

    def take(self, principal: Principal) -> bool:
        """Counts one more operation of the caller's key; False when the key is at its cap."""
        if principal.subject == ANONYMOUS.subject:
            return True
        running = self.per_key.get(principal.subject, 0)
        if running >= self.app.limits.subscriptions_per_key:
            return False
        self.per_key[principal.subject] = running + 1
        return True

    def give_back(self, principal: Principal) -> None:
        if principal.subject == ANONYMOUS.subject:
            return
        running = self.per_key.get(principal.subject, 0) - 1
        if running > 0:
            self.per_key[principal.subject] = running
        else:
            self.per_key.pop(principal.subject, None)


class Session:
    def __init__(self, websocket: WebSocket, sockets: GraphqlSockets) -> None:
        self.ws = websocket
        self.sockets = sockets
        self.app = sockets.app
        self.headers = metadata.header_map(websocket.scope["headers"])
        self.principal: Principal | None = None
        self.init_received = False
        self.acknowledged = False
        self.operations: dict[str, asyncio.Task] = {}
        self._send_lock = asyncio.Lock()
        self._closed = False

    async def run(self) -> None:
        timer = asyncio.ensure_future(self._init_timeout())
        try:
            while not self._closed:
                try:
                    text = await self.ws.receive_text()
                except (WebSocketDisconnect, RuntimeError, KeyError):
                    break
                if _too_long(text, self.app.limits.body_bytes):
                    limit = self.app.limits.body_bytes
                    await self.close(
                        1009, f"message is larger than limits.graphql_body_bytes ({limit} bytes)"
                    )
                    break
                try:
                    message = orjson.loads(text)
                except orjson.JSONDecodeError:
                    await self.close(4400, "Invalid message: not JSON")
                    break
                if not isinstance(message, dict) or not isinstance(message.get("type"), str):
                    await self.close(4400, "Invalid message: no type")
                    break
                await self.handle(message)
        finally:
            timer.cancel()
            for task in list(self.operations.values()):
                task.cancel()
            for task in list(self.operations.values()):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "connection_init":
            if self.init_received:
                await self.close(4429, "Too many initialisation requests")
                return
            self.init_received = True
            payload = message.get("payload")
            if isinstance(payload, dict):
                for key, value in payload.items():
                    if isinstance(key, str) and isinstance(value, (str, int, float)):
                        self.headers[key.lower()] = str(value)
            try:
                self.principal = self.app.authenticate(self.headers)
            except ApiError as e:
                await self.close(4403, f"Forbidden: {e.message}")
                return
            self.acknowledged = True
            await self.send({"type": "connection_ack"})
        elif kind == "ping":
            await self.send(
                {"type": "pong", **({"payload": message["payload"]} if "payload" in message else {})}
            )
        elif kind == "pong":
            return
        elif kind == "subscribe":
            if not self.acknowledged:
                await self.close(4401, "Unauthorized")
                return
            op_id = message.get("id")
            if not isinstance(op_id, str) or not isinstance(message.get("payload"), dict):
                await self.close(4400, "Invalid message: subscribe needs an id and a payload")
                return
            if op_id in self.operations:
                await self.close(4409, f"Subscriber for {op_id} already exists")
                return
            await self.start(op_id, message["payload"])
        elif kind == "complete":
            task = self.operations.pop(str(message.get("id")), None)
            if task is not None:
                task.cancel()
        else:
            await self.close(4400, f"Invalid message: unknown type {kind!r}")

    async def start(self, op_id: str, payload: dict[str, Any]) -> None:
        limits = self.app.limits
        if len(self.operations) >= limits.subscriptions_per_connection:
            await self.send_errors(
                op_id,
                [
                    GraphQLError(
                        f"this connection already runs limits.ws_subscriptions_per_connection "
                        f"({limits.subscriptions_per_connection}) operations; complete one first"
                    )
                ],
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            )
            return
        principal = self.principal
        assert principal is not None  # acknowledged
        if not self.sockets.take(principal):
            await self.send_errors(
                op_id,
                [
                    GraphQLError(
                        f"{principal.subject} already runs limits.ws_subscriptions_per_key "
                        f"({limits.subscriptions_per_key}) operations on this gateway; complete one first"
                    )
                ],
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            )
            return
        task = asyncio.ensure_future(self.operate(op_id, payload))
        # On the task, not in operate's finally: a task cancelled before it starts runs no finally.
        task.add_done_callback(lambda _: self.sockets.give_back(principal))
        self.operations[op_id] = task

    async def operate(self, op_id: str, payload: dict[str, Any]) -> None:
        try:
            query, variables, name = (
                payload.get("query"),
                payload.get("variables"),
                payload.get("operationName"),
            )
            if not isinstance(query, str) or (variables is not None and not isinstance(variables, dict)):
                await self.send_errors(
                    op_id, [GraphQLError("payload needs a 'query' string and object 'variables'")]
                )
                return
            prepared = await self.app.prepare(query, name)
            if isinstance(prepared, list):
                await self.send_errors(op_id, prepared)
                return
            coerced = self.app.coerce_variables(prepared, variables)
            if isinstance(coerced, list):
                await self.send_errors(op_id, coerced)
                return
            request_id = metadata.request_id_of(self.headers) or new_request_id()
            context = self.app.context(self.headers, request_id, self.principal)
            if prepared.operation == OperationType.SUBSCRIPTION:
                await self._stream(op_id, prepared, variables, name, context)
            else:
                result = await self.app.run(prepared, coerced, name, context)
                await self.send({"id": op_id, "type": "next", "payload": result.formatted})
            await self.send({"id": op_id, "type": "complete"})
        finally:
            self.operations.pop(op_id, None)

    async def _stream(self, op_id: str, prepared: Prepared, variables, name, context) -> None:
        results = await subscribe(
            self.app.schema.graphql_schema,
            prepared.document,
            variable_values=variables,
            operation_name=name,
            context_value=context,
        )
        if isinstance(results, ExecutionResult):
            await self.send({"id": op_id, "type": "next", "payload": results.formatted})
            return
        try:
            async for result in results:
                await self.send({"id": op_id, "type": "next", "payload": result.formatted})
        except GraphQLError as e:
            await self.send({"id": op_id, "type": "next", "payload": {"data": None, "errors": [e.formatted]}})
        finally:
            aclose = getattr(results, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def send_errors(
        self,
        op_id: str,
        errors: list[GraphQLError],
        code: grpc.StatusCode = grpc.StatusCode.INVALID_ARGUMENT,
    ) -> None:
        formatted = []
        for e in errors:
            item = e.formatted
            extensions = {"code": code.name, "status": HTTP_STATUS[code]}
            item["extensions"] = {**extensions, **(item.get("extensions") or {})}
            formatted.append(item)
        await self.send({"id": op_id, "type": "error", "payload": formatted})

    async def send(self, message: dict[str, Any]) -> None:
        if self._closed:
            return
        async with self._send_lock:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.ws.send_text(orjson.dumps(message).decode())

    async def close(self, code: int, reason: str) -> None:
        if not self._closed:
            self._closed = True
            reason = reason.encode()[:MAX_CLOSE_REASON].decode(errors="ignore")
            with contextlib.suppress(RuntimeError):
                await self.ws.close(code, reason)

    async def _init_timeout(self) -> None:
        await asyncio.sleep(INIT_TIMEOUT_SECONDS)
        if not self.init_received:
            await self.close(4408, "Connection initialisation timeout")


def _too_long(text: str, limit: int) -> bool:
    """Whether the message's UTF-8 form is over `limit` bytes (encoded only when it may be)."""
    if len(text) > limit:
        return True
    return len(text) * 4 > limit and len(text.encode()) > limit
