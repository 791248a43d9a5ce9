"""Outermost interceptor: every failure leaves as an ApiError, and deadlines are enforced.

Bad input is reported by the servicer as INVALID_ARGUMENT etc.; a dependency's outage (Redis
unreachable under the job queue) is UNAVAILABLE naming it, with no traceback logged; anything
unexpected is logged with the request id and surfaces as INTERNAL without leaking internals.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import grpc
from grpc_interceptor.exceptions import GrpcException
from redis import exceptions as redis_errors

from citadel.server import deadlines
from citadel.server.chain import Call, Handler, Reply
from citadel.server.errors import ApiError
from citadel.server.redaction import redact_text
from citadel.server.resource_limits import exhausted_resource, open_files_limit
from citadel.server.tenancy import in_callers_terms

log = logging.getLogger("citadel.errors")

# Redis is down, too slow, loading, read-only or full, or a Redis Cluster is down, failing
# over or has slots no primary serves: the call may succeed later. (A refused command, such as
# WRONGTYPE, is a bug: INTERNAL.)
REDIS_OUTAGES = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    redis_errors.ClusterError,
    redis_errors.TryAgainError,
    redis_errors.SlotNotCoveredError,
)


def failure_code(error: BaseException) -> grpc.StatusCode:
    """The status a failure is answered with (telemetry counts it under the same code)."""
    if isinstance(error, GrpcException):
        return error.status_code
    if isinstance(error, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED
    if isinstance(error, REDIS_OUTAGES):
        return grpc.StatusCode.UNAVAILABLE
    if exhausted_resource(error) is not None:
        return grpc.StatusCode.UNAVAILABLE  # the machine's, not the caller's: 503, not 429
    return grpc.StatusCode.INTERNAL


def as_api_error(error: Exception, call: Call) -> ApiError:
    """What the caller is told of a failure, whatever raised it and wherever (a unary call, or
    a stream after its first item): the one translation, so every protocol says the same."""
    if isinstance(error, GrpcException) and not isinstance(error, ApiError):
        error = ApiError(error.status_code, error.details)  # grpc-interceptor's vocabulary
    if isinstance(error, ApiError):
        # Stores and servicers name stored collections; the caller sees its own names.
        tenant = getattr(call.state.get("principal"), "tenant", "")
        shown = in_callers_terms(tenant, error.message)
        return error if shown == error.message else ApiError(error.code, shown)
    code = failure_code(error)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ApiError(code, "deadline exceeded")
    what = exhausted_resource(error)
    if what is not None:
        limit = f" (limit {open_files_limit()})" if "open files" in what else ""
        log.error("%s failed: the server ran out of %s%s", call.method.path, what, limit)
        return ApiError(code, f"the server ran out of {what}; retry later or ask its operator")
    if code == grpc.StatusCode.UNAVAILABLE:
        # Only the job queue lets Redis errors through (batch calls, and GenerateEmbedding
        # queueing a hybrid model's job): the cache and rate limits serve without Redis.
        reason = redact_text(str(error)).rstrip(". ") or type(error).__name__
        return ApiError(code, f"job queue unavailable (Redis): {reason}; retry later")
    log.error("unhandled error in %s (request id %s)", call.method.path, call.request_id, exc_info=error)
    return ApiError(code, f"internal error (request id {call.request_id})")


class ErrorsInterceptor:
    async def __call__(self, call: Call, request: Any, proceed: Handler) -> Reply:
        remaining = call.time_remaining()
        try:
            if remaining is None:
                return await proceed(call, request)
            if remaining <= 0:
                raise TimeoutError
            # Recorded for clients deep under the handler that retry (the Qdrant store).
            token = deadlines.CURRENT.set(call.deadline)
            try:
                async with asyncio.timeout(remaining):
                    return await proceed(call, request)
            finally:
                deadlines.CURRENT.reset(token)
        except Exception as e:
            translated = as_api_error(e, call)
            if translated is e:
                raise
            raise translated from None
