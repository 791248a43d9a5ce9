"""Exceptions of the SDK: one class per gRPC status code a caller is likely to handle.

Every exception is a `grpc.RpcError` and answers `code()`, `details()` and `trailing_metadata()`
like the `grpc.Call` it replaces, so code written against plain grpcio stubs keeps working.
"""

from __future__ import annotations

import grpc


class CitadelError(grpc.RpcError):
    """A call ended with a non-OK gRPC status."""

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str,
        trailing_metadata: tuple[tuple[str, str | bytes], ...] = (),
    ) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code = code
        self._details = details
        self._trailing_metadata = trailing_metadata

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._trailing_metadata

    def __str__(self) -> str:
        return f"{self._code.name}: {self._details}"


class InvalidArgument(CitadelError):
    """The request is malformed; the message names the field."""


class NotFound(CitadelError):
    """The collection, vector or job does not exist (or belongs to another tenant)."""


class AlreadyExists(CitadelError):
    """The name is taken."""


class FailedPrecondition(CitadelError):
    """The request is valid but not in this state (for example a bulk-only model called directly)."""


class Unauthenticated(CitadelError):
    """No credentials, or credentials the gateway does not accept."""


class PermissionDenied(CitadelError):
    """The caller's role or tenant does not allow this call."""


class ResourceExhausted(CitadelError):
    """A rate limit or size limit; `retry_after()` says when to try again, if the server said."""

    def retry_after(self) -> float | None:
        for key, value in self._trailing_metadata:
            if key == "retry-after":
                try:
                    return float(value)
                except ValueError:
                    return None
        return None


class DeadlineExceeded(CitadelError):
    """The call did not finish within its timeout."""


class Unavailable(CitadelError):
    """The gateway (or a backend it needs) cannot be reached now; retrying later may work."""


class Cancelled(CitadelError):
    """The call was cancelled."""


BY_CODE: dict[grpc.StatusCode, type[CitadelError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.CANCELLED: Cancelled,
}


def from_rpc_error(error: grpc.RpcError) -> CitadelError:
    """The SDK exception for an error raised by grpcio (a `grpc.Call` carrying the status)."""
    if isinstance(error, CitadelError):
        return error
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = (error.details() if isinstance(error, grpc.Call) else str(error)) or ""
    trailing = (error.trailing_metadata() if isinstance(error, grpc.Call) else None) or ()
    return BY_CODE.get(code, CitadelError)(code, details, tuple(trailing))
