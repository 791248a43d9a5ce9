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
from citadel.server.interceptors.errors import as_api_error
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
    """A unary request's message, read from the stream and parsed when the chain resolves it:
    inline when small, else in a thread and in pieces, so a large message never stops the
    loop for other callers."""

    __slots__ = ("spec", "context")

    def __init__(self, spec: MethodSpec, context: grpc.aio.ServicerContext) -> None:
        self.spec = spec
        self.context = context

    async def resolve(self) -> message.Message:
        raw = await self.context.read()
        if raw is grpc.aio.EOF:
            raise ApiError(grpc.StatusCode.INVALID_ARGUMENT, "request: the call ended before its message")
        return await decode(self.spec, raw)


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
    # Every method is served as a client stream at the transport, so that nothing of a request
    # is read before the chain has admitted its caller: a unary request's message is read and
    # parsed only when the chain resolves it (a PendingRequest), just inside auth. A caller
    # without credentials sending 64 MB gets UNAUTHENTICATED from its headers while grpc core
    # holds no more than its flow-control window of the message. (What is read is bounded by
    # server.max_message_bytes: grpc core answers RESOURCE_EXHAUSTED in its own words, naming
    # both sizes.) On the wire a unary call is a stream of one message, so clients see no
    # difference. Parsing here rather than by grpc's deserializer also turns bytes that are
    # not the request message into the caller's INVALID_ARGUMENT, not UNKNOWN.
    codec = dict(response_serializer=spec.response_type.SerializeToString)

    def request_of(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext):
        return _decoded_stream(spec, requests) if spec.client_streaming else PendingMessage(spec, context)

    async def run(requests, context: grpc.aio.ServicerContext):
        call = grpc_call(spec, context)
        try:
            reply = await handler(call, request_of(requests, context))
        except ApiError as e:
            _finish(call, context)
            await context.abort(e.code, e.message)
        _finish(call, context)
        return reply

    async def run_stream(requests, context: grpc.aio.ServicerContext):
        call = grpc_call(spec, context)
        try:
            async for item in await handler(call, request_of(requests, context)):
                yield item
        except Exception as e:  # raised after the chain returned the stream: translated here
            error = as_api_error(e, call)
            _finish(call, context)
            await context.abort(error.code, error.message)
        _finish(call, context)

    if spec.server_streaming:
        return grpc.stream_stream_rpc_method_handler(run_stream, **codec)
    return grpc.stream_unary_rpc_method_handler(run, **codec)


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
            # No bandwidth-delay-product probing: grpc core pings the client on nearly every
            # request that brings data and handles its ack, which cost ~150 µs of server CPU
            # per call (Health/Check 433 -> 300 µs, SearchVectors 1,000 -> 833 µs) and a third
            # of the throughput with 8 calls in flight (bench server_cpu, throughput; issue 20).
            # Receive windows then stay at grpc's 64 KB default instead of growing: as tight as
            # ever for an unauthenticated caller's message; a 15 MB upsert on loopback is as
            # fast, while a very distant client's large messages wait on window updates.
            ("grpc.http2.bdp_probe", 0),
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
