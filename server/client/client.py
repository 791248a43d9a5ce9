"""`Client`: one gRPC channel to a gateway with the generated service stubs on it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from citadel.client.call_options import CallOptions, Metadata
from citadel.sdk.citadel.admin.v1 import AdminServiceStub
from citadel.sdk.citadel.batch.v1 import BatchServiceStub
from citadel.sdk.citadel.vector.v1 import VectorServiceStub

DEFAULT_TARGET = "localhost:8081"
# The gateway accepts messages up to 64 MiB by default (CITADEL_MAX_MESSAGE_BYTES).
MAX_MESSAGE_BYTES = 64 << 20

_UNSET: Any = object()


class Client:
    """A connection to a Citadel gateway.

    `vector`, `batch` and `admin` are betterproto2's generated stubs (methods in snake_case,
    dataclass requests and responses from `citadel.sdk`). Every call carries the client's
    metadata (with `api_key`, `authorization: Bearer <key>`) and, when `timeout` is set, a
    deadline that many seconds away. Failed calls raise `citadel.client.errors.CitadelError`
    subclasses (`NotFound`, `InvalidArgument`, `Unauthenticated` ...) carrying the gRPC status.

    `api_key` is an API key or a JWT. `credentials` switches to TLS; without it the channel is
    plaintext, as for a gateway on loopback.
    """

    vector: VectorServiceStub
    batch: BatchServiceStub
    admin: AdminServiceStub

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        credentials: grpc.ChannelCredentials | None = None,
        wait_for_ready: bool | None = None,
        channel_options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            *channel_options,
        ]
        if credentials is not None:
            channel = grpc.secure_channel(target, credentials, options=options)
        else:
            channel = grpc.insecure_channel(target, options=options)
        self.target = target
        self._setup(channel, True, _with_key(tuple(metadata), api_key), timeout, wait_for_ready)

    @classmethod
    def from_channel(
        cls,
        channel: grpc.Channel,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        wait_for_ready: bool | None = None,
    ) -> Client:
        """A client on a channel the caller made (and closes)."""
        client = cls.__new__(cls)
        client.target = ""
        client._setup(channel, False, _with_key(tuple(metadata), api_key), timeout, wait_for_ready)
        return client

    def _setup(
        self,
        channel: grpc.Channel,
        owns: bool,
        metadata: Metadata,
        timeout: float | None,
        wait_for_ready: bool | None,
    ) -> None:
        self.channel = channel
        self._owns_channel = owns
        self._options = CallOptions(metadata, timeout, wait_for_ready)
        # The stubs' channel: it adds this client's metadata, timeout and exceptions to every call.
        # A caller may use it directly to call a method with other (de)serializers.
        self.call_channel: grpc.Channel = grpc.intercept_channel(channel, self._options)
        self.vector = VectorServiceStub(self.call_channel)
        self.batch = BatchServiceStub(self.call_channel)
        self.admin = AdminServiceStub(self.call_channel)

    @property
    def timeout(self) -> float | None:
        return self._options.timeout

    @property
    def metadata(self) -> Metadata:
        return self._options.metadata

    def with_options(
        self,
        *,
        timeout: float | None = _UNSET,
        api_key: str | None = _UNSET,
        metadata: Sequence[tuple[str, str]] = _UNSET,
        wait_for_ready: bool | None = _UNSET,
    ) -> Client:
        """A client on the same channel with other call options, for example `timeout=None`
        for a stream that may run for long. `metadata` replaces the other metadata but keeps the
        API key, unless `api_key` or an `authorization` entry is given. Closing it leaves the
        channel open."""
        current = self._options
        base = current.metadata
        if metadata is not _UNSET:
            given = tuple(metadata)
            gives_key = any(k == "authorization" for k, _ in given)
            base = tuple((k, v) for k, v in base if k == "authorization" and not gives_key) + given
        if api_key is not _UNSET:
            base = _with_key(tuple((k, v) for k, v in base if k != "authorization"), api_key)
        client = Client.from_channel(
            self.channel,
            timeout=current.timeout if timeout is _UNSET else timeout,
            metadata=base,
            wait_for_ready=current.wait_for_ready if wait_for_ready is _UNSET else wait_for_ready,
        )
        client.target = self.target
        return client

    def close(self) -> None:
        if self._owns_channel:
            self.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _with_key(metadata: Metadata, api_key: str | None) -> Metadata:
    return metadata + ((("authorization", f"Bearer {api_key}"),) if api_key else ())
