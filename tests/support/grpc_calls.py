"""Calls any RPC by its spec over gRPC, returning the status code name and the reply."""

from __future__ import annotations

import grpc

from citadel.server.methods import MethodSpec


def call_grpc(channel: grpc.Channel, spec: MethodSpec, request, metadata=(), timeout: float = 30):
    """(code name, reply) for unary replies, (code name, [replies]) for streams. A client
    stream sends the messages of `request` when it is a list, else `request` alone."""
    kind = (
        ("stream" if spec.client_streaming else "unary")
        + "_"
        + ("stream" if spec.server_streaming else "unary")
    )
    rpc = getattr(channel, kind)(
        spec.path,
        request_serializer=spec.request_type.SerializeToString,
        response_deserializer=spec.response_type.FromString,
    )
    argument = iter(request if isinstance(request, list) else [request]) if spec.client_streaming else request
    try:
        reply = rpc(argument, metadata=list(metadata), timeout=timeout)
        return "OK", list(reply) if spec.server_streaming else reply
    except grpc.RpcError as e:
        return e.code().name, e.details()
