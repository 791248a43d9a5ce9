"""One RPC, three protocols: call any unary method over gRPC, REST and GraphQL from its descriptor.

The clients here are written independently of the adapters (google's json_format for JSON,
the HttpRule read straight from the method options, GraphQL types from introspection), so
the parity tests compare the adapters against the protocols, not against themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import grpc
import httpx
from google.api import annotations_pb2
from google.protobuf import descriptor, json_format, message

from citadel.server.methods import MethodSpec

FD = descriptor.FieldDescriptor
SCALAR_MESSAGES = {
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.Struct",
    "google.protobuf.Value",
    "google.protobuf.ListValue",
    "google.protobuf.Empty",
    "google.protobuf.Any",
    "google.protobuf.FieldMask",
}
MAX_SELECTION_DEPTH = 5


@dataclass
class Outcome:
    protocol: str
    code: grpc.StatusCode
    message: str = ""
    response: message.Message | None = None
    http_status: int | None = None


def is_map(f: descriptor.FieldDescriptor) -> bool:
    return f.is_repeated and f.message_type is not None and f.message_type.GetOptions().map_entry


def lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


class Protocols:
    def __init__(self, channel: grpc.Channel, http: httpx.Client) -> None:
        self.channel = channel
        self.http = http
        self._root_fields: dict[str, tuple[str, dict[str, str]]] | None = None

    # -- gRPC ------------------------------------------------------------------------------

    def grpc(self, spec: MethodSpec, request: message.Message) -> Outcome:
        call = self.channel.unary_unary(
            spec.path,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=spec.response_type.FromString,
        )
        try:
            return Outcome("grpc", grpc.StatusCode.OK, response=call(request, timeout=60))
        except grpc.RpcError as e:
            return Outcome("grpc", e.code(), e.details())

    # -- REST --------------------------------------------------------------------------------

    def rest(self, spec: MethodSpec, request: message.Message, headers: dict | None = None) -> Outcome:
        rule = spec.descriptor.GetOptions().Extensions[annotations_pb2.http]
        method = rule.WhichOneof("pattern")
        template = getattr(rule, method)
        body = json_format.MessageToDict(request)
        path = template
        while "{" in path:
            start, end = path.index("{"), path.index("}")
            field_path = path[start + 1 : end]
            value: Any = request
            for part in field_path.split("."):
                value = getattr(value, part)
            path = path[:start] + quote(str(value), safe="") + path[end + 1 :]
            _drop(body, request.DESCRIPTOR, field_path.split("."))
        kwargs: dict[str, Any] = {"headers": headers or {}}
        if rule.body == "*":
            kwargs["json"] = body
        elif rule.body:
            field = request.DESCRIPTOR.fields_by_name[rule.body]
            kwargs["json"] = body.get(field.json_name, {})
        else:
            kwargs["params"] = _flatten(body)
        response = self.http.request(method.upper(), path, **kwargs)
        payload = response.json()
        if response.status_code != 200:
            return Outcome(
                "rest",
                grpc.StatusCode(_code(payload["code"])),
                payload["message"],
                http_status=response.status_code,
            )
        reply = spec.response_type()
        json_format.ParseDict(payload, reply)
        return Outcome("rest", grpc.StatusCode.OK, response=reply, http_status=200)

    # -- GraphQL -----------------------------------------------------------------------------

    def root_fields(
        self, headers: dict | None = None
    ) -> dict[str, tuple[str, dict[str, str]]] | httpx.Response:
        """GraphQL field name → (operation, {argument: type}) from introspection, made with the
        caller's headers; the gateway's refusal when it refuses them (with authentication on
        it authenticates before parsing any document, introspection included)."""
        if self._root_fields is not None:
            return self._root_fields
        type_ref = "name kind ofType { name kind ofType { name kind ofType { name kind } } }"
        query = (
            "{ __schema { queryType { name } mutationType { name } } "
            + " ".join(
                f'{op}: __type(name: "{name}") {{ fields {{ name args {{ name type {{ {type_ref} }} }} }} }}'
                for op, name in (("query", "Query"), ("mutation", "Mutation"))
            )
            + " }"
        )
        response = self.http.post("/graphql", json={"query": query}, headers=headers or {})
        if response.status_code != 200:
            return response
        data = response.json()["data"]
        out = {}
        for op in ("query", "mutation"):
            for field in (data.get(op) or {}).get("fields") or []:
                out[field["name"]] = (op, {a["name"]: _type_string(a["type"]) for a in field["args"]})
        self._root_fields = out
        return out

    def graphql(self, spec: MethodSpec, request: message.Message, headers: dict | None = None) -> Outcome:
        name = spec.graphql.field or lower_camel(spec.name)
        fields = self.root_fields(headers)
        if isinstance(fields, httpx.Response):
            return _graphql_outcome(fields)
        op, arg_types = fields[name]
        values = _graphql_value(request.DESCRIPTOR, json_format.MessageToDict(request))
        definitions = ", ".join(f"${k}: {arg_types[k]}" for k in values)
        call_args = ", ".join(f"{k}: ${k}" for k in values)
        selection = selection_set(spec.descriptor.output_type)
        document = (
            f"{op} Parity{'(' + definitions + ')' if values else ''} "
            f"{{ {name}{'(' + call_args + ')' if values else ''}{selection} }}"
        )
        response = self.http.post(
            "/graphql", json={"query": document, "variables": values}, headers=headers or {}
        )
        payload = response.json()
        if payload.get("errors"):
            return _graphql_outcome(response)
        reply = spec.response_type()
        data = payload["data"][name]
        json_format.ParseDict(_from_graphql(spec.descriptor.output_type, data), reply)
        return Outcome("graphql", grpc.StatusCode.OK, response=reply, http_status=response.status_code)


def _graphql_outcome(response: httpx.Response) -> Outcome:
    """The first error of a GraphQL answer, as its code and HTTP status say."""
    error = response.json()["errors"][0]
    ext = error.get("extensions") or {}
    return Outcome(
        "graphql",
        grpc.StatusCode[ext.get("code", "UNKNOWN")],
        error["message"],
        http_status=ext.get("status"),
    )


def _code(number: int) -> int:
    return next(c for c in grpc.StatusCode if c.value[0] == number)


def _drop(body: dict, desc: descriptor.Descriptor, parts: list[str]) -> None:
    field = desc.fields_by_name[parts[0]]
    if len(parts) == 1:
        body.pop(field.json_name, None)
    elif field.json_name in body:
        _drop(body[field.json_name], field.message_type, parts[1:])


def _flatten(body: dict, prefix: str = "") -> list[tuple[str, str]]:
    out = []
    for key, value in body.items():
        if isinstance(value, dict):
            out += _flatten(value, f"{prefix}{key}.")
        elif isinstance(value, list):
            out += [(prefix + key, _text(v)) for v in value]
        else:
            out.append((prefix + key, _text(value)))
    return out


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _type_string(t: dict) -> str:
    if t["kind"] == "NON_NULL":
        return _type_string(t["ofType"]) + "!"
    if t["kind"] == "LIST":
        return "[" + _type_string(t["ofType"]) + "]"
    return t["name"]


def selection_set(desc: descriptor.Descriptor, depth: int = 0, path: tuple[str, ...] = ()) -> str:
    """Every field of the output type, recursive types cut at MAX_SELECTION_DEPTH."""
    if desc.full_name in SCALAR_MESSAGES or not desc.fields:
        return ""
    parts = []
    for f in desc.fields:
        if f.message_type is None or _is_scalar(f.message_type):
            parts.append(f.json_name)
            continue
        if is_map(f):
            value = f.message_type.fields_by_name["value"]
            inner = selection_set(value.message_type, depth + 1, path) if value.message_type else ""
            parts.append(f"{f.json_name} {{ key value{inner} }}")
            continue
        if depth >= MAX_SELECTION_DEPTH or f.message_type.full_name in path:
            continue
        parts.append(f.json_name + selection_set(f.message_type, depth + 1, (*path, desc.full_name)))
    return " { " + " ".join(parts) + " }"


def _is_scalar(desc: descriptor.Descriptor) -> bool:
    """Messages GraphQL shows as scalars: well-known types (wrappers included)."""
    return desc.full_name in SCALAR_MESSAGES or desc.full_name.startswith("google.protobuf.")


def _graphql_value(desc: descriptor.Descriptor, data: dict) -> dict:
    """proto3 JSON → GraphQL input values: the same, except maps become entry lists."""
    out = {}
    for key, value in data.items():
        f = desc.fields_by_name.get(key) or next(x for x in desc.fields if x.json_name == key)
        out[f.json_name] = _graphql_field(f, value)
    return out


def _graphql_field(f: descriptor.FieldDescriptor, value: Any) -> Any:
    if is_map(f):
        value_field = f.message_type.fields_by_name["value"]
        return [{"key": k, "value": _graphql_single(value_field, v)} for k, v in value.items()]
    if f.is_repeated:
        return [_graphql_single(f, v) for v in value]
    return _graphql_single(f, value)


def _graphql_single(f: descriptor.FieldDescriptor, value: Any) -> Any:
    if (
        f.message_type is not None
        and f.message_type.full_name not in SCALAR_MESSAGES
        and isinstance(value, dict)
    ):
        return _graphql_value(f.message_type, value)
    return value


def _from_graphql(desc: descriptor.Descriptor, data: Any) -> Any:
    """GraphQL output → proto3 JSON: entry lists back to maps, nulls dropped."""
    if not isinstance(data, dict) or desc.full_name in SCALAR_MESSAGES:
        return data
    out = {}
    for f in desc.fields:
        if f.json_name not in data or data[f.json_name] is None:
            continue
        value = data[f.json_name]
        if is_map(f):
            value_field = f.message_type.fields_by_name["value"]
            out[f.json_name] = {
                e["key"]: _from_graphql(value_field.message_type, e["value"])
                if value_field.message_type
                else e["value"]
                for e in value
            }
        elif f.message_type is not None and f.is_repeated:
            out[f.json_name] = [_from_graphql(f.message_type, v) for v in value]
        elif f.message_type is not None:
            out[f.json_name] = _from_graphql(f.message_type, value)
        else:
            out[f.json_name] = value
    return out
