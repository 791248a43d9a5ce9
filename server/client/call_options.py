"""A client interceptor that gives every call the client's metadata and timeout, and raises
the SDK's exceptions instead of bare `grpc.RpcError`s.

betterproto2's generated sync stubs call `channel.unary_unary(...)(message)` with no timeout or
metadata arguments, so both are applied here, on the channel the stubs are built on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from citadel.client.errors import from_rpc_error

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Details(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Metadata | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class _Requests:
    """A request iterator that remembers the exception it raised: grpcio reads it on a thread
    of its own and reports only "Exception iterating requests!", so it is re-raised as it was."""

    def __init__(self, requests: Iterator[Any]) -> None:
        self._requests = iter(requests)
        self.error: BaseException | None = None

    def __iter__(self) -> _Requests:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._requests)
        except StopIteration:
            raise
        except BaseException as e:
            self.error = e
            raise


class ResponseStream:
    """The responses of a server stream, raising the SDK's exceptions. The generated stub
    methods wrap it in a generator (`yield from`), whose `close()` reaches `close()` here and
    cancels the call: close a stream you stop reading early."""

    def __init__(self, call: Any, requests: _Requests | None = None) -> None:
        self._call = call
        self._requests = requests

    @property
    def call(self) -> grpc.Call:
        """The underlying call: its code, details and metadata once it has ended."""
        return self._call

    def __iter__(self) -> ResponseStream:
        return self

    def __next__(self) -> Any:
        try:
            return next(self._call)
        except grpc.RpcError as e:
            if self._requests is not None and self._requests.error is not None:
                raise self._requests.error from None
            raise from_rpc_error(e) from None

    def cancel(self) -> bool:
        return bool(self._call.cancel())

    def close(self) -> None:
        self._call.cancel()


class CallOptions(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    def __init__(self, metadata: Metadata, timeout: float | None, wait_for_ready: bool | None) -> None:
        self.metadata = metadata
        self.timeout = timeout
        self.wait_for_ready = wait_for_ready

    def _details(self, details: grpc.ClientCallDetails) -> _Details:
        return _Details(
            method=details.method,
            timeout=details.timeout if details.timeout is not None else self.timeout,
            metadata=(tuple(details.metadata or ()) + self.metadata) or None,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready
            if details.wait_for_ready is not None
            else self.wait_for_ready,
            compression=details.compression,
        )

    @staticmethod
    def _unary(outcome: Any, requests: _Requests | None = None) -> Any:
        # grpcio hands back a failure as a grpc.RpcError outcome: the failed call itself, or a
        # wrapper of a local exception (a request that would not serialize), re-raised as it was.
        if isinstance(outcome, grpc.RpcError):
            if requests is not None and requests.error is not None:
                raise requests.error
            cause = outcome.exception() if isinstance(outcome, grpc.Future) else outcome
            if isinstance(cause, grpc.RpcError):
                raise from_rpc_error(cause) from None
            raise cause
        return outcome

    def intercept_unary_unary(self, continuation: Callable, details: grpc.ClientCallDetails, request: Any):
        return self._unary(continuation(self._details(details), request))

    def intercept_stream_unary(
        self, continuation: Callable, details: grpc.ClientCallDetails, request_iterator: Iterator[Any]
    ):
        requests = _Requests(request_iterator)
        return self._unary(continuation(self._details(details), requests), requests)

    def intercept_unary_stream(self, continuation: Callable, details: grpc.ClientCallDetails, request: Any):
        return ResponseStream(continuation(self._details(details), request))

    def intercept_stream_stream(
        self, continuation: Callable, details: grpc.ClientCallDetails, request_iterator: Iterator[Any]
    ):
        requests = _Requests(request_iterator)
        return ResponseStream(continuation(self._details(details), requests), requests)
