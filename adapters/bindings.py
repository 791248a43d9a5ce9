"""google.api.http rules → HTTP bindings, and HTTP requests → request messages.

Every RPC gets one binding per rule (the rule plus its `additional_bindings`); an RPC without
a rule is bound to `POST /<package.Service>/<Method>` with `body: "*"`, as grpc-gateway's
`generate_unbound_methods` does, so no RPC is unreachable over REST. Rules are checked at
start-up: a template that does not parse or a field that does not exist stops the gateway
with the RPC's name, rather than a route that fails per request.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor, message

from citadel.adapters import json_codec, query
from citadel.adapters.json_codec import FD, JsonError
from citadel.adapters.pattern import Template, TemplateError, parse
from citadel.server.methods import MethodSpec


class BindingError(RuntimeError):
    """An HTTP rule that cannot be served; the gateway refuses to start."""


@dataclass(frozen=True)
class Binding:
    spec: MethodSpec
    http_method: str  # upper-case
    template: Template
    body: str  # "" (no body), "*" (every field not in the path) or a top-level field name
    response_body: str  # "" (the whole response) or a top-level response field name
    index: int  # 0 for the rule itself, 1.. for its additional_bindings

    @property
    def path_fields(self) -> tuple[str, ...]:
        return tuple(v.field_path for v in self.template.variables)

    @property
    def owned_fields(self) -> frozenset[str]:
        """Field paths a query parameter may not set: the path's, and the body field."""
        owned = set(self.path_fields)
        if self.body and self.body != "*":
            owned.add(self.body)
        return frozenset(owned)

    @property
    def body_field(self) -> descriptor.FieldDescriptor | None:
        if not self.body or self.body == "*":
            return None
        return self.spec.descriptor.input_type.fields_by_name[self.body]

    @property
    def response_field(self) -> descriptor.FieldDescriptor | None:
        if not self.response_body:
            return None
        return self.spec.descriptor.output_type.fields_by_name[self.response_body]

    def build_request(
        self, path_values: dict[str, str], query_pairs: list[tuple[str, str]], body: bytes
    ) -> message.Message:
        """The request message: body first, then query parameters, then path values (the path
        wins over a body that names the same field, as in grpc-gateway)."""
        msg = self.spec.request_type()
        has_body = bool(body.strip())
        if self.body == "*":
            if has_body:
                json_codec.decode(json_codec.loads(body), msg)
        elif self.body:
            if has_body:
                field = self.body_field
                value = json_codec.loads(body)
                if value is not None:
                    json_codec.decode_field(field, value, msg, field.json_name)
        elif has_body:
            raise JsonError("", f"{self.http_method} {self.template.source} takes no request body")
        query.apply(msg, query_pairs, self.owned_fields, self.body == "*")
        for path, text in path_values.items():
            target = msg
            *parents, leaf = path.split(".")
            for name in parents:
                target = getattr(target, name)
            field = target.DESCRIPTOR.fields_by_name[leaf]
            query.set_from_text(target, field, text, f"path parameter {path!r}")
        return msg

    def response_value(self, reply: message.Message, encoder: json_codec.Encoder):
        field = self.response_field
        if field is None:
            return encoder.message(reply)
        value = getattr(reply, field.name)
        if field.cpp_type == FD.CPPTYPE_MESSAGE and not field.is_repeated and not reply.HasField(field.name):
            return None
        return encoder.field(field, value)


def bindings_for(spec: MethodSpec) -> list[Binding]:
    opts = spec.descriptor.GetOptions()
    where = f"{spec.service}.{spec.name}"
    if not opts.HasExtension(annotations_pb2.http):
        rule = http_pb2.HttpRule(post=spec.path, body="*")
        return [_binding(spec, rule, 0, where)]
    rule = opts.Extensions[annotations_pb2.http]
    out = [_binding(spec, rule, 0, where)]
    for i, extra in enumerate(rule.additional_bindings, start=1):
        if extra.additional_bindings:
            raise BindingError(f"{where}: additional_bindings may not nest")
        out.append(_binding(spec, extra, i, where))
    return out


def _binding(spec: MethodSpec, rule: http_pb2.HttpRule, index: int, where: str) -> Binding:
    kind = rule.WhichOneof("pattern")
    if kind is None:
        raise BindingError(f"{where}: google.api.http rule has no pattern")
    if kind == "custom":
        method, path = rule.custom.kind.upper(), rule.custom.path
    else:
        method, path = kind.upper(), getattr(rule, kind)
    try:
        template = parse(path)
    except TemplateError as e:
        raise BindingError(f"{where}: {e}") from None
    request = spec.descriptor.input_type
    for var in template.variables:
        _check_path_field(request, var.field_path, where)
    if rule.body and rule.body != "*" and rule.body not in request.fields_by_name:
        raise BindingError(f"{where}: body {rule.body!r} is not a top-level field of {request.name}")
    if rule.body and method in ("GET", "DELETE"):
        raise BindingError(f"{where}: {method} {path} may not take a body")
    if rule.response_body and rule.response_body not in spec.descriptor.output_type.fields_by_name:
        raise BindingError(f"{where}: response_body {rule.response_body!r} is not a field of the response")
    if rule.body != "*":
        for name in query.SYSTEM_PARAMETERS:
            if name in request.fields_by_name:
                raise BindingError(f"{where}: request field {name!r} clashes with the query parameter")
    return Binding(spec, method, template, rule.body, rule.response_body, index)


def _check_path_field(msg: descriptor.Descriptor, path: str, where: str) -> None:
    parts = path.split(".")
    for i, name in enumerate(parts):
        field = msg.fields_by_name.get(name)
        if field is None:
            raise BindingError(f"{where}: path variable {path!r}: {msg.name} has no field {name!r}")
        if field.is_repeated:
            raise BindingError(f"{where}: path variable {path!r}: {name!r} is repeated")
        if i < len(parts) - 1:
            if field.cpp_type != FD.CPPTYPE_MESSAGE:
                raise BindingError(f"{where}: path variable {path!r}: {name!r} is not a message")
            msg = field.message_type
        elif field.cpp_type == FD.CPPTYPE_MESSAGE:
            raise BindingError(f"{where}: path variable {path!r} must be a scalar field")
