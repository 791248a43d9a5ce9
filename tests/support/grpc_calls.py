"""Calls any RPC by its spec over gRPC, returning the status code name and the reply."""

from __future__ import annotations

import grpc

from citadel.server.methods import MethodSpec


def call_grpc(channel: grpc.Channel, spec: MethodSpec, request, metadata=(), timeout: float = 30):
    rpc = channel.unary_unary(
        spec.path,
        request_serializer=spec.request_type.SerializeToString,
        response_deserializer=spec.response_type.FromString,
    )
    try:
        return "OK", rpc(request, metadata=list(metadata), timeout=timeout)
    except grpc.RpcError as e:
        return e.code().name, e.details()
