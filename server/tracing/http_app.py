"""The HTTP server span: ASGI middleware around the REST/GraphQL application.

One SERVER span per HTTP request that can reach the chain (REST bindings and /graphql), named
`{METHOD} /graphql` or `{METHOD} {RPC path}` for a REST binding, continuing the caller's W3C
`traceparent` header. The probes, /metrics, the docs and static assets make no spans: a
scraper would otherwise start a trace every few seconds.

A GraphQL WebSocket carries many operations over one long connection, so it gets no span of
its own: the connection's `traceparent`, if any, is made the parent of each operation's call.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

GRAPHQL_PATH = "/graphql"
UNTRACED = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/assets/")


@dataclass
class HttpRequest:
    """What the calls under one HTTP request report to its span."""

    rpcs: list[str] = field(default_factory=list)


_current: ContextVar[HttpRequest | None] = ContextVar("citadel_http_request", default=None)


def current_http_request() -> HttpRequest | None:
    """The traced HTTP request this code runs under, if any."""
    return _current.get()


def _headers(scope: dict) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}


class TracingApp:
    def __init__(self, app: Any, tracer: trace.Tracer) -> None:
        self._app = app
        self._tracer = tracer

    async def __call__(self, scope, receive, send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            token = context.attach(propagate.extract(_headers(scope)))
            try:
                await self._app(scope, receive, send)
            finally:
                context.detach(token)
            return
        path = scope.get("path", "")
        if kind != "http" or path.startswith(UNTRACED):
            await self._app(scope, receive, send)
            return
        await self._traced(scope, receive, send, path)

    async def _traced(self, scope, receive, send, path: str) -> None:
        headers = _headers(scope)
        method = scope.get("method", "GET")
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": path,
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        if scope.get("server"):
            attributes["server.address"], attributes["server.port"] = scope["server"][0], scope["server"][1]
        if scope.get("client"):
            attributes["client.address"] = scope["client"][0]
        if "user-agent" in headers:
            attributes["user_agent.original"] = headers["user-agent"]
        if path == GRAPHQL_PATH:
            attributes["http.route"] = GRAPHQL_PATH
        parent = propagate.extract(headers)
        span = self._tracer.start_span(method, context=parent, kind=SpanKind.SERVER, attributes=attributes)
        request = HttpRequest()
        status: int | None = None

        async def send_traced(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token = context.attach(trace.set_span_in_context(span, parent))
        current = _current.set(request)
        try:
            await self._app(scope, receive, send_traced)
        except BaseException as e:
            span.record_exception(e)
            span.set_status(Status(StatusCode.ERROR, type(e).__name__))
            raise
        finally:
            _current.reset(current)
            context.detach(token)
            if path == GRAPHQL_PATH:
                span.update_name(f"{method} {GRAPHQL_PATH}")
            elif len(request.rpcs) == 1:
                span.update_name(f"{method} {request.rpcs[0]}")
            if status is not None:
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
            span.end()
