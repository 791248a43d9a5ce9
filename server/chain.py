"""The protocol-neutral interceptor chain.

gRPC, REST and GraphQL all turn a request into a `Call` plus a request message and run it
through the same `Chain`: errors/deadline → metrics → auth → [resolve] → rate limit → cache →
handler. No protocol proxies to another, so each gets identical policy without a network hop.

Identity before cost: an adapter may hand the chain a `PendingRequest` instead of the message
(REST's unread body, gRPC's undecoded bytes). The chain resolves it right after the interceptor
that admits callers (auth), so an unauthenticated caller never has a body read or decoded.
Interceptors before that point see only the Call and must not touch the request.
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.protobuf import message

from citadel.server.auth.principal import ANONYMOUS, Principal
from citadel.server.methods import MethodSpec

# What a handler returns: a message for unary responses, an async iterator for streams.
Reply = Any
Handler = Callable[["Call", Any], Awaitable[Reply]]

# uuid4's version and variant bits, set on 128 random bits.
_UUID4_CLEAR = ~((0xF << 76) | (0x3 << 62))
_UUID4_SET = (0x4 << 76) | (0x2 << 62)


def new_request_id() -> str:
    """A random request id in uuid4().hex's form. The random module's generator (reseeded in
    forked children) instead of uuid4's os.urandom: a request id is unique, not secret, and
    this is made on every call (~0.4 µs against ~2 µs)."""
    return "%032x" % ((random.getrandbits(128) & _UUID4_CLEAR) | _UUID4_SET)


@dataclass
class Call:
    """One invocation of an RPC, whatever protocol it arrived on."""

    method: MethodSpec
    protocol: str  # "grpc" | "rest" | "graphql"
    metadata: Mapping[str, str] = field(default_factory=dict)  # keys lower-case
    deadline: float | None = None  # time.monotonic() by which the call must end
    request_id: str = field(default_factory=new_request_id)
    # Filled by interceptors (the authenticated principal, cache outcome, ...).
    state: dict[str, Any] = field(default_factory=dict)
    # Sent back to the caller: gRPC initial metadata, HTTP response headers.
    response_metadata: dict[str, str] = field(default_factory=dict)

    def time_remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


class PendingRequest(ABC):
    """A request message not made yet: made by `resolve()` once the caller is admitted."""

    @abstractmethod
    async def resolve(self) -> message.Message:
        """Reads and decodes what the request message needs; raises ApiError for bad input."""


class Interceptor(Protocol):
    """An interceptor is called as `interceptor(call, request, proceed)`, or it defines
    `for_method(spec)` instead (or as well), called once per method when the chain is built: it
    returns what to run for that method's calls (a callable of that shape with the method's
    policy read once), or None when it has nothing to do for the method (rate limits with none
    configured, caching for an RPC whose option declares none), which leaves it out of that
    method's handler. When it defines `for_method`, the chain never calls it directly.

    The one interceptor that decides who may call (auth) sets `admits_callers = True` and has
    `authenticate(metadata) -> Principal`; pending requests are resolved just inside it."""

    async def __call__(self, call: Call, request: Any, proceed: Handler) -> Reply: ...


class Chain:
    """Runs a call through the interceptors, in order, then the servicer method."""

    def __init__(self, interceptors: Sequence[Interceptor], servicers: Mapping[str, object]):
        self._interceptors = list(interceptors)
        self._servicers = dict(servicers)  # service full name -> servicer
        self._gate = next((i for i in self._interceptors if getattr(i, "admits_callers", False)), None)

    def authenticate(self, metadata: Mapping[str, str]) -> Principal:
        """Who the caller is, from metadata alone (keys lower-case): call it before reading or
        parsing anything of a request that arrives outside `handler_for` (a GraphQL document).
        Raises ApiError UNAUTHENTICATED, counted as the chain counts it. Put the principal in
        `call.state["principal"]` of the calls made for that request: auth then checks only
        the method's role and does not verify the credential again. Without an auth
        interceptor every caller is the anonymous admin."""
        if self._gate is None:
            return ANONYMOUS
        return self._gate.authenticate(metadata)

    def handler_for(self, spec: MethodSpec) -> Handler:
        """The servicer's method for `spec`; fails at start-up when it is missing."""
        servicer = self._servicers.get(spec.service)
        target = getattr(servicer, spec.name, None)
        if target is None:
            raise RuntimeError(f"no servicer implements {spec.service}.{spec.name}")

        # Plain functions handing on the next awaitable: an `async def` per level would add a
        # coroutine (created, awaited, torn down) per interceptor to every call.
        def innermost(call: Call, request: message.Message) -> Awaitable[Reply]:
            return target(request, call)

        handler: Handler = innermost
        # Pending requests resolve just inside the gate (or before everything without one).
        for interceptor in reversed(self._interceptors):
            if interceptor is self._gate:
                handler = _resolving(handler)
            for_method = getattr(interceptor, "for_method", None)
            step = interceptor if for_method is None else for_method(spec)
            if step is not None:
                handler = _bind(step, handler)
        return handler if self._gate is not None else _resolving(handler)


def _bind(interceptor: Interceptor, proceed: Handler) -> Handler:
    def run(call: Call, request: Any) -> Awaitable[Reply]:
        return interceptor(call, request, proceed)

    return run


def _resolving(proceed: Handler) -> Handler:
    """Turns a PendingRequest into its message before `proceed`; a message passes as it is."""

    async def resolve_then(call: Call, pending: PendingRequest) -> Reply:
        return await proceed(call, await pending.resolve())

    def run(call: Call, request: Any) -> Awaitable[Reply]:
        if isinstance(request, PendingRequest):
            return resolve_then(call, request)
        return proceed(call, request)

    return run
