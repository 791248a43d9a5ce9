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
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import orjson
from graphql import ExecutionResult, GraphQLError, OperationType, subscribe
from starlette.websockets import WebSocket, WebSocketDisconnect

from citadel.adapters import metadata
from citadel.adapters.graphql_app import GraphqlApp, Prepared

PROTOCOL = "graphql-transport-ws"
INIT_TIMEOUT_SECONDS = 10.0


async def serve(websocket: WebSocket, app: GraphqlApp) -> None:
    if PROTOCOL not in websocket.scope.get("subprotocols", []):
        await websocket.accept()
        await websocket.close(4406, "Subprotocol not acceptable")
        return
    await websocket.accept(subprotocol=PROTOCOL)
    await Session(websocket, app).run()


class Session:
    def __init__(self, websocket: WebSocket, app: GraphqlApp) -> None:
        self.ws = websocket
        self.app = app
        self.headers = metadata.header_map(websocket.scope["headers"])
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
            self.operations[op_id] = asyncio.ensure_future(self.operate(op_id, message["payload"]))
        elif kind == "complete":
            task = self.operations.pop(str(message.get("id")), None)
            if task is not None:
                task.cancel()
        else:
            await self.close(4400, f"Invalid message: unknown type {kind!r}")

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
            prepared = self.app.prepare(query, name)
            if isinstance(prepared, list):
                await self.send_errors(op_id, prepared)
                return
            errors = self.app.variable_errors(prepared, variables, name)
            if errors:
                await self.send_errors(op_id, errors)
                return
            request_id = metadata.request_id_of(self.headers) or uuid.uuid4().hex
            context = self.app.context(self.headers, request_id)
            if prepared.operation == OperationType.SUBSCRIPTION:
                await self._stream(op_id, prepared, variables, name, context)
            else:
                result = await self.app.run(prepared, variables, name, context)
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

    async def send_errors(self, op_id: str, errors: list[GraphQLError]) -> None:
        formatted = []
        for e in errors:
            item = e.formatted
            item["extensions"] = {"code": "INVALID_ARGUMENT", "status": 400, **(item.get("extensions") or {})}
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
            with contextlib.suppress(RuntimeError):
                await self.ws.close(code, reason)

    async def _init_timeout(self) -> None:
        await asyncio.sleep(INIT_TIMEOUT_SECONDS)
        if not self.init_received:
            await self.close(4408, "Connection initialisation timeout")
