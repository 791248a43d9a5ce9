"""Every call to Qdrant goes through `QdrantCalls.run`: its failures become statuses, and the
transient ones are retried.

Qdrant says the same thing three ways: a REST status (qdrant-client's UnexpectedResponse), a
gRPC status, or, in the client's local mode, a ValueError. What they mean for the caller:

- not found (404, NOT_FOUND, "... not found") → NOT_FOUND naming the collection; the store asks
  no "does it exist?" before a call, it reads the answer of the call itself;
- already exists (409, ALREADY_EXISTS) → ALREADY_EXISTS; bad request (other 4xx,
  INVALID_ARGUMENT) → INVALID_ARGUMENT with Qdrant's reason;
- refused credentials (401/403) → UNAVAILABLE naming `store.qdrant_api_key`, not retried;
- no connection, a reset, a timeout, 5xx, 429, gRPC UNAVAILABLE/DEADLINE_EXCEEDED/INTERNAL... →
  UNAVAILABLE naming Qdrant (URL redacted), never INTERNAL. Idempotent calls (reads, upserts by
  their deterministic point ids, deletes by id) are tried again with full jitter while the
  caller's deadline (server/deadlines.py; without one, `store.qdrant_timeout_seconds`) leaves
  room, each attempt cut to fit in it, and within a retry budget so an outage cannot turn every
  call into a burst of calls.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc
import httpx
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from citadel.server import deadlines
from citadel.server.errors import ApiError, already_exists, not_found
from citadel.server.models.retry_budget import RetryBudget
from citadel.server.redaction import redact_text

T = TypeVar("T")

# Full-jitter backoff: the n-th retry waits uniform(0, min(CAP, BASE * 2**n)) seconds.
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 1.0
# Retries end with an attempt that has at least this long before the end.
LAST_ATTEMPT_SECONDS = 0.2
# The part of a deadline kept for answering: retries stop this much before it.
ANSWER_RESERVE_SECONDS = 0.25
ANSWER_RESERVE_SHARE = 0.1
# Qdrant's reason, as much of it as a message needs.
REASON_CHARS = 300

_TRANSIENT_GRPC = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.DATA_LOSS,
}
_BAD_INPUT_GRPC = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.OUT_OF_RANGE,
}


@dataclass(frozen=True)
class Transient:
    """A failure that may pass: `error` is what the caller gets if it does not in time."""

    error: ApiError
    wait_at_least: float = 0.0  # Qdrant's Retry-After


class QdrantCalls:
    def __init__(self, where: str, timeout_seconds: float, remote: bool) -> None:
        self._where = where  # "Qdrant at <redacted URL>"
        self._timeout = timeout_seconds
        self._remote = remote  # local mode has no transport: nothing to retry or time out
        self._budget = RetryBudget(ratio=0.2, min_per_second=5.0)

    async def run(
        self, call: Callable[[], Awaitable[T]], collection: str = "", *, idempotent: bool = False
    ) -> T:
        """`call()`'s result, or ApiError. `collection` is named in NOT_FOUND and similar
        answers; `idempotent` calls are tried again after transient failures."""
        if not self._remote:
            try:
                return await call()
            except Exception as e:
                raise _final(self.status(e, collection)) from e
        self._budget.record_request()
        end = self._end()
        attempt = 0
        while True:
            attempt += 1
            try:
                async with asyncio.timeout(max(0.001, min(self._timeout, end - time.monotonic()))):
                    return await call()
            except Exception as e:
                failure = self.status(e, collection)
                if isinstance(failure, ApiError):
                    raise failure from e
                left = end - time.monotonic() - LAST_ATTEMPT_SECONDS
                delay = max(failure.wait_at_least, random.uniform(0, _backoff(attempt)))
                if failure.wait_at_least > left or left <= 0:
                    raise _after(failure.error, attempt) from e
                if not idempotent or not self._budget.try_retry():
                    raise _after(failure.error, attempt) from e
            await asyncio.sleep(min(delay, left))  # a last attempt just before the end

    async def once(self, call: Callable[[], Awaitable[T]], timeout: float) -> T:
        """One attempt within `timeout` (probes: start-up and the dependency watcher)."""
        try:
            async with asyncio.timeout(timeout):
                return await call()
        except Exception as e:
            raise _final(self.status(e, "")) from e

    def status(self, error: Exception, collection: str) -> ApiError | Transient:
        """What `error` from a call about `collection` means: an ApiError for the caller, or a
        Transient one worth another attempt."""
        what = f"collection {collection!r}" if collection else "Qdrant"
        if isinstance(error, ApiError):
            return error
        if isinstance(error, UnexpectedResponse):
            return self._http_status(error, what, collection)
        if isinstance(error, grpc.RpcError) and hasattr(error, "code"):
            return self._grpc_status(error, what, collection)
        if isinstance(error, ResourceExhaustedResponse):
            return Transient(self._down(f"it is overloaded: {_reason(error)}"), float(error.retry_after_s))
        if isinstance(error, ResponseHandlingException):
            source = error.source
            if isinstance(source, (httpx.TransportError, OSError, TimeoutError)):
                return Transient(self._down(_reason(source)))
            return self._down(f"it answered what the client cannot read: {_reason(source)}")
        if isinstance(error, TimeoutError):
            return Transient(self._down("no answer in time"))
        if isinstance(error, (httpx.TransportError, OSError)):
            return Transient(self._down(_reason(error)))
        if isinstance(error, ValueError):  # local mode's way of saying all of it
            text = str(error)
            if text.endswith("not found") and collection:
                return not_found(what)
            if "already exists" in text and collection:
                return already_exists(what)
            return ApiError(grpc.StatusCode.INVALID_ARGUMENT, f"{what}: {_clip(text)}")
        raise error  # anything else is a bug: the errors interceptor logs it as INTERNAL

    def _http_status(self, error: UnexpectedResponse, what: str, collection: str) -> ApiError | Transient:
        code = error.status_code or 0
        reason = _qdrant_reason(error)
        if code == 404 and collection:
            return not_found(what)
        if code == 409:
            return already_exists(what)
        if code in (401, 403):
            return self._down(
                f"it refused the gateway's credentials (HTTP {code}); check store.qdrant_api_key"
            )
        if code in (408, 429) or code >= 500 or code == 0:
            return Transient(self._down(f"HTTP {code}: {reason}"))
        return ApiError(grpc.StatusCode.INVALID_ARGUMENT, f"{what}: Qdrant refused the request: {reason}")

    def _grpc_status(self, error: grpc.RpcError, what: str, collection: str) -> ApiError | Transient:
        code = error.code()
        reason = _clip(redact_text(error.details() or code.name))
        if code == grpc.StatusCode.NOT_FOUND and collection:
            return not_found(what)
        if code == grpc.StatusCode.ALREADY_EXISTS:
            return already_exists(what)
        if code in _BAD_INPUT_GRPC:
            return ApiError(grpc.StatusCode.INVALID_ARGUMENT, f"{what}: Qdrant refused the request: {reason}")
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return self._down(
                f"it refused the gateway's credentials ({code.name}); check store.qdrant_api_key"
            )
        if code in _TRANSIENT_GRPC:
            return Transient(self._down(f"{code.name}: {reason}"))
        return self._down(f"{code.name}: {reason}")

    def _end(self) -> float:
        """When retrying must stop: before the caller's deadline, or after one timeout's worth."""
        now = time.monotonic()
        left = deadlines.remaining()
        if left is None:
            return now + self._timeout
        return now + left - min(ANSWER_RESERVE_SECONDS, ANSWER_RESERVE_SHARE * max(left, 0.0))

    def _down(self, reason: str) -> ApiError:
        return ApiError(grpc.StatusCode.UNAVAILABLE, f"{self._where} is unavailable: {reason}")


def _final(failure: ApiError | Transient) -> ApiError:
    return failure.error if isinstance(failure, Transient) else failure


def _after(error: ApiError, attempts: int) -> ApiError:
    if attempts == 1:
        return error
    return ApiError(error.code, f"{error.message} (after {attempts} attempts); retry later")


def _backoff(attempt: int) -> float:
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))


def _reason(error: BaseException) -> str:
    """An exception in a few words: its text (URLs redacted), else its type's name."""
    return _clip(redact_text(str(error)).strip()) or type(error).__name__


def _qdrant_reason(error: UnexpectedResponse) -> str:
    """Qdrant's own words from an error reply ({"status": {"error": ...}}), else the reason phrase."""
    try:
        text = error.structured()["status"]["error"]
    except Exception:
        text = error.reason_phrase or "no reason given"
    return _clip(redact_text(str(text)))


def _clip(text: str) -> str:
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"
