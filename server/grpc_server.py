"""The grpc.aio server: every RPC bound to the shared chain, plus health and reflection.

Handlers are derived from the method specs, so an RPC added to a proto is served without
code here. Reflection answers from a pool that keeps proto comments, in both the v1 and
v1alpha reflection services (grpcio-reflection ships only v1alpha; the two are the same
messages on the wire, so v1 reuses its servicer under the v1 service name).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence

import grpc
from google.protobuf import descriptor_pb2, message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

from citadel.server.chain import Call, Chain, PendingRequest, new_request_id
from citadel.server.descriptors import descriptor_set, pool_with_comments
from citadel.server.errors import ApiError
from citadel.server.methods import MethodSpec
from citadel.server.protobuf_pieces import PIECE_BYTES, parse_in_pieces

log = logging.getLogger("citadel.grpc")

REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
REFLECTION_V1ALPHA = reflection.SERVICE_NAME


def grpc_call(spec: MethodSpec, context: grpc.aio.ServicerContext) -> Call:
    # gRPC metadata keys arrive lower-case (HTTP/2 header names); binary ones are left out.
    metadata = {key: value for key, value in context.invocation_metadata() or () if not key.endswith("-bin")}
    remaining = context.time_remaining()
    given = metadata.get("x-request-id")
    return Call(
        method=spec,
        protocol="grpc",
        metadata=metadata,
        deadline=None if remaining is None else time.monotonic() + remaining,
        request_id=given[:128] if given is not None else new_request_id(),
    )


def _finish(call: Call, context: grpc.aio.ServicerContext) -> None:
    context.set_trailing_metadata((("x-request-id", call.request_id), *call.response_metadata.items()))


class PendingMessage(PendingRequest):
    """One received message, parsed when the chain resolves it: inline when small, else in a
    thread and in pieces, so a large message never stops the loop for other callers."""

    __slots__ = ("spec", "raw")

    def __init__(self, spec: MethodSpec, raw: bytes) -> None:
        self.spec = spec
        self.raw = raw

    async def resolve(self) -> message.Message:
        return await decode(self.spec, self.raw)


async def decode(spec: MethodSpec, raw: bytes) -> message.Message:
    try:
        if len(raw) <= PIECE_BYTES:
            return spec.request_type.FromString(raw)
        msg = spec.request_type()
        await asyncio.to_thread(parse_in_pieces, msg, raw)
        return msg
    except message.DecodeError as e:
        reason = str(e).rpartition("': ")[2]  # after "Error parsing message with type '...'"
        raise ApiError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"request: not a valid {spec.request_type.DESCRIPTOR.full_name} ({reason})",
        ) from None


async def _decoded_stream(spec: MethodSpec, raws: AsyncIterator[bytes]) -> AsyncIterator[message.Message]:
    """A client stream's messages, each parsed as the servicer asks for it: after auth."""
    async for raw in raws:
        yield await decode(spec, raw)


def method_handler(spec: MethodSpec, chain: Chain) -> grpc.RpcMethodHandler:
    handler = chain.handler_for(spec)
    # Requests arrive as bytes and are parsed only once the chain has admitted the caller (a
    # PendingRequest): an unauthenticated 64 MB message is refused without being decoded.
    # grpc core has already bounded it by server.max_message_bytes (RESOURCE_EXHAUSTED, in
    # grpc's own words). Parsing here rather than by grpc's deserializer also turns bytes that
    # are not the request message into the caller's INVALID_ARGUMENT, not UNKNOWN.
    codec = dict(response_serializer=spec.response_type.SerializeToString)

    def request_of(raw):
        return _decoded_stream(spec, raw) if spec.client_streaming else PendingMessage(spec, raw)

    async def run(request, context: grpc.aio.ServicerContext):
        call = grpc_call(spec, context)
        try:
            reply = await handler(call, request_of(request))
        except ApiError as e:
            _finish(call, context)
            await context.abort(e.code, e.message)
        _finish(call, context)
        return reply

    async def run_stream(request, context: grpc.aio.ServicerContext):
        call = grpc_call(spec, context)
        try:
            async for item in await handler(call, request_of(request)):
                yield item
        except ApiError as e:
            _finish(call, context)
            await context.abort(e.code, e.message)
        _finish(call, context)

    if spec.server_streaming:
        factory = (
            grpc.stream_stream_rpc_method_handler
            if spec.client_streaming
            else grpc.unary_stream_rpc_method_handler
        )
        return factory(run_stream, **codec)
    factory = (
        grpc.stream_unary_rpc_method_handler if spec.client_streaming else grpc.unary_unary_rpc_method_handler
    )
    return factory(run, **codec)


def build_server(
    specs: Sequence[MethodSpec],
    chain: Chain,
    health_servicer: health.aio.HealthServicer,
    max_message_bytes: int,
    extra_descriptor_sets=(),
    reuse_port: bool = False,
) -> grpc.aio.Server:
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            # Only worker processes share a port; a lone gateway must fail on a taken one.
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ]
    )
    by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
    for spec in specs:
        by_service.setdefault(spec.service, {})[spec.name] = method_handler(spec, chain)
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler(name, handlers) for name, handlers in by_service.items()]
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)

    names = [*by_service, health.SERVICE_NAME, REFLECTION_V1, REFLECTION_V1ALPHA]
    pool = pool_with_comments(
        extra_sets=tuple(extra_descriptor_sets),
        extra_files=(health_pb2.DESCRIPTOR, reflection_pb2.DESCRIPTOR),
    )
    originals = {f.name: f for fds in (descriptor_set(), *extra_descriptor_sets) for f in fds.file}
    reflector = reflection.aio.ReflectionServicer(names, pool=_CommentedPool(pool, originals))
    for service_name in (REFLECTION_V1ALPHA, REFLECTION_V1):
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    service_name,
                    {
                        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                            reflector.ServerReflectionInfo,
                            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
                        )
                    },
                )
            ]
        )
    return server


class _CommentedPool:
    """What the reflection servicer sees of our descriptor pool, with two fixes:

    - Python's DescriptorPool cannot find the file of a method symbol (`pkg.Service.Method`),
      which `grpcurl describe pkg.Service.Method` asks for: answer with the service's file.
    - FileDescriptor.CopyToProto drops source info, so reflection would lose the proto
      comments: files are answered with the FileDescriptorProto as generated, comments kept.
    """

    def __init__(self, pool, originals: dict[str, descriptor_pb2.FileDescriptorProto]) -> None:
        self._pool = pool
        self._originals = originals

    def FindFileByName(self, name: str):
        return _CommentedFile(self._pool.FindFileByName(name), self._originals)

    def FindFileContainingSymbol(self, symbol: str):
        try:
            found = self._pool.FindFileContainingSymbol(symbol)
        except KeyError:
            service, _, method = symbol.rpartition(".")
            owner = self._pool.FindServiceByName(service)  # KeyError again when unknown
            if method not in owner.methods_by_name:
                raise
            found = owner.file
        return _CommentedFile(found, self._originals)

    def __getattr__(self, name: str):
        return getattr(self._pool, name)


class _CommentedFile:
    def __init__(self, fd, originals: dict[str, descriptor_pb2.FileDescriptorProto]) -> None:
        self._fd = fd
        self._originals = originals
        self.name = fd.name

    @property
    def dependencies(self):
        return [_CommentedFile(d, self._originals) for d in self._fd.dependencies]

    def CopyToProto(self, proto: descriptor_pb2.FileDescriptorProto) -> None:
        original = self._originals.get(self.name)
        if original is not None:
            proto.CopyFrom(original)
        else:
            self._fd.CopyToProto(proto)
