"""The RPCs the gateway serves, read from the descriptors with the policy their options declare.

Everything per-method (gRPC handlers, REST routes, GraphQL fields, interceptor policy) is
derived from these specs; nothing is written by hand for one RPC. An RPC without an access
role fails here, at start-up, so no method is ever served without a policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf import descriptor, message, message_factory

from citadel.options.v1 import options_pb2


class PolicyError(RuntimeError):
    """A method's declared policy is missing or inconsistent; the gateway refuses to start."""


@dataclass(frozen=True)
class MethodSpec:
    descriptor: descriptor.MethodDescriptor
    request_type: type[message.Message]
    response_type: type[message.Message]
    access: options_pb2.AccessPolicy
    cache: options_pb2.CachePolicy
    graphql: options_pb2.GraphqlPolicy

    @property
    def name(self) -> str:
        return self.descriptor.name

    @property
    def service(self) -> str:
        return self.descriptor.containing_service.full_name

    @property
    def path(self) -> str:
        """The gRPC path, /package.Service/Method."""
        return f"/{self.service}/{self.name}"

    @property
    def client_streaming(self) -> bool:
        return self.descriptor.client_streaming

    @property
    def server_streaming(self) -> bool:
        return self.descriptor.server_streaming

    def collection_of(self, request: message.Message) -> str:
        """The collection the request touches, per the access policy ('' when none)."""
        path = self.access.collection_field
        if not path:
            return ""
        value: object = request
        for part in path.split("."):
            value = getattr(value, part)
        return str(value)


def method_specs(services: Iterable[descriptor.ServiceDescriptor]) -> list[MethodSpec]:
    specs = []
    for service in services:
        for method in service.methods:
            specs.append(_spec(method))
    return specs


def _spec(method: descriptor.MethodDescriptor) -> MethodSpec:
    opts = method.GetOptions()
    where = f"{method.containing_service.full_name}.{method.name}"
    access = opts.Extensions[options_pb2.access]
    if access.role == options_pb2.ROLE_UNSPECIFIED:
        raise PolicyError(
            f"{where} declares no access role: add option (citadel.options.v1.access) = "
            "{role: ...} to the RPC"
        )
    if access.collection_field:
        _check_field_path(method.input_type, access.collection_field, where)
    cache = opts.Extensions[options_pb2.cache]
    if cache.invalidates_collection and not access.collection_field:
        raise PolicyError(f"{where} invalidates a collection but names no collection_field")
    return MethodSpec(
        descriptor=method,
        request_type=message_factory.GetMessageClass(method.input_type),
        response_type=message_factory.GetMessageClass(method.output_type),
        access=access,
        cache=cache,
        graphql=opts.Extensions[options_pb2.graphql],
    )


def _check_field_path(msg: descriptor.Descriptor, path: str, where: str) -> None:
    for i, part in enumerate(path.split(".")):
        field = msg.fields_by_name.get(part)
        if field is None:
            raise PolicyError(f"{where}: collection_field {path!r} has no field {part!r}")
        if i < len(path.split(".")) - 1:
            msg = field.message_type
            if msg is None:
                raise PolicyError(f"{where}: collection_field {path!r}: {part!r} is not a message")
