"""One span per call, first in the interceptor chain, so every protocol gets it alike.

Named for the gRPC method path, with the rpc.* attributes, the protocol the call arrived on,
its request id and final status code. Over gRPC (and GraphQL over WebSocket) it is the SERVER
span, continuing a W3C `traceparent` from the call's metadata; over REST and GraphQL it sits
under the HTTP server span (http_app.py), which took `traceparent` from the HTTP headers.
A server stream's span stays open until the stream ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from opentelemetry import context, propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from citadel.server.chain import Call, Handler, Reply
from citadel.server.errors import ApiError
from citadel.server.tracing.http_app import current_http_request

# Server errors in OpenTelemetry's gRPC conventions; the rest are the caller's doing.
SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


class TracingInterceptor:
    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    async def __call__(self, call: Call, request: Any, proceed: Handler) -> Reply:
        http = current_http_request()
        if http is not None:
            http.rpcs.append(call.method.path)
        # Under an HTTP span (or any span already current) the call is its child; otherwise it
        # continues the trace its metadata names, if any.
        inside = trace.get_current_span().get_span_context().is_valid
        parent = context.get_current() if inside else propagate.extract(call.metadata)
        spec = call.method
        span = self._tracer.start_span(
            spec.path,
            context=parent,
            kind=SpanKind.INTERNAL if http is not None else SpanKind.SERVER,
            attributes={
                "rpc.system": "grpc",
                "rpc.service": spec.service,
                "rpc.method": spec.name,
                "citadel.protocol": call.protocol,
                "citadel.request_id": call.request_id,
            },
        )
        call.state["trace_id"] = trace.format_trace_id(span.get_span_context().trace_id)
        active = trace.set_span_in_context(span, parent)
        token = context.attach(active)
        try:
            reply = await proceed(call, request)
        except ApiError as e:
            _finish(span, call, e.code, e.message)
            raise
        except asyncio.CancelledError:
            remaining = call.time_remaining()
            late = remaining is not None and remaining <= 0
            _finish(span, call, grpc.StatusCode.DEADLINE_EXCEEDED if late else grpc.StatusCode.CANCELLED)
            raise
        except BaseException as e:
            span.record_exception(e)
            _finish(span, call, grpc.StatusCode.INTERNAL, type(e).__name__)
            raise
        finally:
            context.detach(token)
        if spec.server_streaming:
            return _traced_stream(reply, span, call, active)
        _finish(span, call, grpc.StatusCode.OK)
        return reply


async def _traced_stream(
    stream: AsyncIterator[Any], span: trace.Span, call: Call, active: context.Context
) -> AsyncIterator[Any]:
    """The stream's items, each produced with the call's span current; the span ends with it."""
    code, message = grpc.StatusCode.OK, ""
    try:
        while True:
            token = context.attach(active)
            try:
                item = await anext(stream)
            except StopAsyncIteration:
                return
            finally:
                context.detach(token)
            yield item
    except ApiError as e:
        code, message = e.code, e.message
        raise
    except (asyncio.CancelledError, GeneratorExit):
        code = grpc.StatusCode.CANCELLED
        raise
    except BaseException as e:
        span.record_exception(e)
        code, message = grpc.StatusCode.INTERNAL, type(e).__name__
        raise
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None and code != grpc.StatusCode.OK:
            await aclose()
        _finish(span, call, code, message)


def _finish(span: trace.Span, call: Call, code: grpc.StatusCode, message: str = "") -> None:
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    principal = call.state.get("principal")
    if principal is not None:
        span.set_attribute("enduser.id", principal.subject)
        if principal.tenant:
            span.set_attribute("citadel.tenant", principal.tenant)
    if code in SERVER_ERRORS:
        span.set_status(Status(StatusCode.ERROR, f"{code.name}: {message}" if message else code.name))
    span.end()
