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
from redis import exceptions as redis_errors

from citadel.server.chain import Call, Handler, Reply
from citadel.server.errors import ApiError
from citadel.server.redaction import redact_text
from citadel.server.tenancy import in_callers_terms

log = logging.getLogger("citadel.errors")

# Redis is down, too slow, loading, read-only or full: the call may succeed later. (A refused
# command, such as WRONGTYPE, is a bug: INTERNAL.)
REDIS_OUTAGES = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
)


class ErrorsInterceptor:
    async def __call__(self, call: Call, request: Any, proceed: Handler) -> Reply:
        remaining = call.time_remaining()
        try:
            if remaining is None:
                return await proceed(call, request)
            if remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                return await proceed(call, request)
        except ApiError as e:
            # Stores and servicers name stored collections; the caller sees its own names.
            tenant = getattr(call.state.get("principal"), "tenant", "")
            shown = in_callers_terms(tenant, e.message)
            if shown == e.message:
                raise
            raise ApiError(e.code, shown) from None
        except TimeoutError:
            raise ApiError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded") from None
        except REDIS_OUTAGES as e:
            # Only the job queue lets Redis errors through (batch calls, and GenerateEmbedding
            # queueing a hybrid model's job): the cache and rate limits serve without Redis.
            reason = redact_text(str(e)).rstrip(". ") or type(e).__name__
            raise ApiError(
                grpc.StatusCode.UNAVAILABLE, f"job queue unavailable (Redis): {reason}; retry later"
            ) from None
        except Exception:
            log.exception("unhandled error in %s (request id %s)", call.method.path, call.request_id)
            raise ApiError(
                grpc.StatusCode.INTERNAL, f"internal error (request id {call.request_id})"
            ) from None
