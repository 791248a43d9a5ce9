"""One table from gRPC status code to HTTP status, and google.rpc.Status as the error body.

The table is google.rpc's documented mapping (google/rpc/code.proto), the same one
grpc-gateway uses. REST writes it as the response status, GraphQL as extensions.status.
"""

from __future__ import annotations

from typing import Any

import grpc

from citadel.server.errors import ApiError

HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}

REQUEST_INFO_TYPE = "type.googleapis.com/google.rpc.RequestInfo"


class HttpError(ApiError):
    """An error the HTTP layer raises itself (unknown path, wrong method, oversize body),
    where the HTTP status is more precise than the table's (405 rather than 501)."""

    def __init__(
        self, code: grpc.StatusCode, message: str, http_status: int, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(code, message)
        self.http_status = http_status
        self.headers = headers or {}


def http_status(error: ApiError) -> int:
    if isinstance(error, HttpError):
        return error.http_status
    return HTTP_STATUS.get(error.code, 500)


def status_json(code: grpc.StatusCode, message: str, request_id: str | None = None) -> dict[str, Any]:
    """google.rpc.Status in proto3 JSON, with the request id as a google.rpc.RequestInfo detail."""
    details = [{"@type": REQUEST_INFO_TYPE, "requestId": request_id}] if request_id else []
    return {"code": code.value[0], "message": message, "details": details}
