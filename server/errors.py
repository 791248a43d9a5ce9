"""The one error type the core raises: a gRPC status code and a message naming the field.

Every protocol maps it from here: the gRPC server aborts with it, the REST adapter turns
it into an HTTP status and a google.rpc.Status body, GraphQL into extensions.code.

The vocabulary is grpc-interceptor's exception hierarchy: ApiError is a GrpcException, and a
servicer may raise any of that package's exceptions (`NotFound("...")`, `InvalidArgument`...),
which the errors interceptor turns into an ApiError, so every protocol answers it the same.
"""

from __future__ import annotations

import grpc
from grpc_interceptor.exceptions import GrpcException

# Messages echo the caller's values (`name: 'xxx...' is not valid`). gRPC sends the message
# percent-encoded in a trailer, and clients drop the whole status past 8 KiB of metadata, so a
# message is kept to this many UTF-8 bytes: its head (the field) and tail (the problem).
MAX_MESSAGE_BYTES = 2048


def clip(message: str) -> str:
    data = message.encode("utf-8", "surrogatepass")
    if len(data) <= MAX_MESSAGE_BYTES:
        return message
    half = MAX_MESSAGE_BYTES // 2 - 32
    head = data[:half].decode("utf-8", "ignore")
    tail = data[-half:].decode("utf-8", "ignore")
    return f"{head} …[{len(message) - len(head) - len(tail)} characters cut]… {tail}"


class ApiError(GrpcException):
    """A failure the caller can act on: status code plus a message that names the field."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        message = clip(message)
        # GrpcException's own __init__ refuses OK; set its two attributes as it would.
        Exception.__init__(self, message)  # str(error) is the message, as for any exception
        self.status_code = code
        self.details = message
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"ApiError({self.code.name}, {self.message!r})"

    def __reduce__(self):
        # Worker processes receive it from the shared-state host (pickled): keep code and message.
        return (ApiError, (self.code, self.message))


def invalid(field: str, problem: str) -> ApiError:
    """INVALID_ARGUMENT for one field, phrased `field: problem`."""
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {problem}")


def not_found(what: str) -> ApiError:
    return ApiError(grpc.StatusCode.NOT_FOUND, f"{what} not found")


def already_exists(what: str) -> ApiError:
    return ApiError(grpc.StatusCode.ALREADY_EXISTS, f"{what} already exists")


def unavailable(what: str) -> ApiError:
    return ApiError(grpc.StatusCode.UNAVAILABLE, what)
