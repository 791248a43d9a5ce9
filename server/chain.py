"""The protocol-neutral interceptor chain.

gRPC, REST and GraphQL all turn a request into a `Call` plus a request message and run it
through the same `Chain`: errors/deadline → metrics → auth → rate limit → cache → handler.
No protocol proxies to another, so each gets identical policy without a network hop.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.protobuf import message

from citadel.server.methods import MethodSpec

# What a handler returns: a message for unary responses, an async iterator for streams.
Reply = Any
Handler = Callable[["Call", Any], Awaitable[Reply]]


@dataclass
class Call:
    """One invocation of an RPC, whatever protocol it arrived on."""

    method: MethodSpec
    protocol: str  # "grpc" | "rest" | "graphql"
    metadata: Mapping[str, str] = field(default_factory=dict)  # keys lower-case
    deadline: float | None = None  # time.monotonic() by which the call must end
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Filled by interceptors (the authenticated principal, cache outcome, ...).
    state: dict[str, Any] = field(default_factory=dict)
    # Sent back to the caller: gRPC initial metadata, HTTP response headers.
    response_metadata: dict[str, str] = field(default_factory=dict)

    def time_remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


class Interceptor(Protocol):
    async def __call__(self, call: Call, request: Any, proceed: Handler) -> Reply: ...


class Chain:
    """Runs a call through the interceptors, in order, then the servicer method."""

    def __init__(self, interceptors: Sequence[Interceptor], servicers: Mapping[str, object]):
        self._interceptors = list(interceptors)
        self._servicers = dict(servicers)  # service full name -> servicer

    def handler_for(self, spec: MethodSpec) -> Handler:
        """The servicer's method for `spec`; fails at start-up when it is missing."""
        servicer = self._servicers.get(spec.service)
        target = getattr(servicer, spec.name, None)
        if target is None:
            raise RuntimeError(f"no servicer implements {spec.service}.{spec.name}")

        async def innermost(call: Call, request: message.Message) -> Reply:
            return await target(request, call)

        handler: Handler = innermost
        for interceptor in reversed(self._interceptors):
            handler = _bind(interceptor, handler)
        return handler


def _bind(interceptor: Interceptor, proceed: Handler) -> Handler:
    async def run(call: Call, request: Any) -> Reply:
        return await interceptor(call, request, proceed)

    return run
