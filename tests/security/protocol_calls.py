"""One unary RPC with the caller's credentials over gRPC, REST and GraphQL (tests/adapters/
protocols.py builds the REST and GraphQL requests from the method's descriptor)."""

from __future__ import annotations

import grpc
import httpx
from google.protobuf import message

from citadel.server.descriptors import SERVICES
from citadel.server.methods import MethodSpec, method_specs
from tests.adapters.protocols import Outcome, Protocols
from tests.security.conftest import Secured

PROTOCOLS = ("grpc", "rest", "graphql")
SPECS: dict[str, MethodSpec] = {spec.name: spec for spec in method_specs(SERVICES)}


def call(gateway: Secured, protocol: str, method: str, request: message.Message, bearer: str) -> Outcome:
    """`method` (its short name) as the holder of `bearer` (an API key or a JWT)."""
    spec = SPECS[method]
    headers = {"authorization": f"Bearer {bearer}"}
    if protocol == "grpc":
        stub = gateway.proc.channel().unary_unary(
            spec.path,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=spec.response_type.FromString,
        )
        try:
            return Outcome(
                "grpc",
                grpc.StatusCode.OK,
                response=stub(request, metadata=tuple(headers.items()), timeout=60),
            )
        except grpc.RpcError as e:
            return Outcome("grpc", e.code(), e.details())
    # The client's own header lets GraphQL introspection in (it needs a caller too); the call's
    # header replaces it for the request under test.
    root = {"authorization": f"Bearer {gateway.creds.keys['root']}"}
    with httpx.Client(base_url=gateway.proc.http_url, headers=root, timeout=60) as http:
        return getattr(Protocols(gateway.proc.channel(), http), protocol)(spec, request, headers=headers)
