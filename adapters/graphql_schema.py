"""The GraphQL schema, built with graphene from the method specs and the message descriptors.

    messages → object types (and `<Name>Input` input types); enums → enums (values by name)
    repeated → lists; maps → lists of `{key, value}` entries; oneofs → nullable fields,
    at most one set (checked when the request is decoded); int64/uint64 → Int64/UInt64
    (strings, as in proto3 JSON); uint32 → UInt32; bytes → Bytes (base64); Struct, Value,
    ListValue, Any, Empty → JSON; Timestamp, Duration → RFC 3339 / "1.5s" strings;
    wrappers → their nullable scalar. Proto comments become descriptions.

Each RPC is one root field whose arguments are the request's fields: GET-bound RPCs are
queries, the rest mutations, server streams subscriptions, unless the method's
`(citadel.options.v1.graphql)` option says otherwise (or hides it). A `repeated float`
field also gets a `<name>Base64` sibling (base64 little-endian float32), in and out.

Resolvers call `chain.handler_for(spec)` through `GraphqlContext`, so the schema itself is
independent of a running gateway: `make generate` prints the same schema as SDL.
"""

from __future__ import annotations

import base64
import enum
import keyword
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import graphene
from google.protobuf import descriptor, message
from graphql import GraphQLError, Undefined, print_schema, value_from_ast_untyped
from graphql.language import ast

from citadel.adapters import json_codec, streaming
from citadel.adapters.bindings import bindings_for
from citadel.adapters.descriptions import Descriptions
from citadel.adapters.errors import http_status
from citadel.adapters.json_codec import FD, WELL_KNOWN, WRAPPERS, JsonError, is_float_list, is_map, real_oneof
from citadel.options.v1 import options_pb2
from citadel.server.chain import Call, Handler
from citadel.server.errors import ApiError
from citadel.server.methods import MethodSpec

BASE64_SUFFIX = "Base64"


class SchemaError(RuntimeError):
    """The protos cannot be exposed as GraphQL as declared; the gateway refuses to start."""


# -- scalars ------------------------------------------------------------------------------


def _int_scalar(name: str, low: int, high: int, as_string: bool, doc: str) -> type[graphene.Scalar]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise GraphQLError(f"{name} must be an integer or a string of digits, got {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise GraphQLError(f"{name} must be an integer or a string of digits, got {value!r}") from None
        if not low <= number <= high:
            raise GraphQLError(f"{number} is out of range for {name}")
        return number

    def parse_literal(node: ast.ValueNode, _variables: Any = None) -> Any:
        if isinstance(node, (ast.IntValueNode, ast.StringValueNode)):
            return parse(node.value)
        return Undefined

    return type(
        name,
        (graphene.Scalar,),
        {
            "__doc__": doc,
            "serialize": staticmethod(lambda v: str(int(v)) if as_string else int(v)),
            "parse_value": staticmethod(parse),
            "parse_literal": staticmethod(parse_literal),
        },
    )


Int64 = _int_scalar(
    "Int64", -(2**63), 2**63 - 1, True, "A signed 64-bit integer, written as a string (as in proto3 JSON)."
)
UInt64 = _int_scalar(
    "UInt64", 0, 2**64 - 1, True, "An unsigned 64-bit integer, written as a string (as in proto3 JSON)."
)
UInt32 = _int_scalar("UInt32", 0, 2**32 - 1, False, "An unsigned 32-bit integer (0 to 4294967295).")


def _string_scalar(name: str, doc: str, check: Callable[[str], None] | None = None) -> type[graphene.Scalar]:
    def parse(value: Any) -> str:
        if not isinstance(value, str):
            raise GraphQLError(f"{name} must be a string, got {value!r}")
        if check is not None:
            check(value)
        return value

    def parse_literal(node: ast.ValueNode, _variables: Any = None) -> Any:
        return parse(node.value) if isinstance(node, ast.StringValueNode) else Undefined

    return type(
        name,
        (graphene.Scalar,),
        {
            "__doc__": doc,
            "serialize": staticmethod(lambda v: v),
            "parse_value": staticmethod(parse),
            "parse_literal": staticmethod(parse_literal),
        },
    )


def _check_base64(text: str) -> None:
    try:
        json_codec.bytes_from_base64(text, "Bytes")
    except JsonError as e:
        raise GraphQLError(e.message) from None


def _serialize_bytes(value: Any) -> str:
    return base64.b64encode(value).decode() if isinstance(value, bytes) else value


Bytes = _string_scalar("Bytes", "Bytes as a base64 string (standard or URL-safe alphabet).", _check_base64)
Bytes.serialize = staticmethod(_serialize_bytes)
Timestamp = _string_scalar("Timestamp", "A point in time as an RFC 3339 string, e.g. 2024-05-01T12:00:00Z.")
Duration = _string_scalar("Duration", 'A span of time in seconds with an "s" suffix, e.g. "1.5s".')


class JSON(graphene.Scalar):
    """Any JSON value (google.protobuf.Struct, Value, ListValue, Any, Empty)."""

    @staticmethod
    def serialize(value: Any) -> Any:
        return value

    @staticmethod
    def parse_value(value: Any) -> Any:
        return value

    @staticmethod
    def parse_literal(node: ast.ValueNode, _variables: Any = None) -> Any:
        return value_from_ast_untyped(node, _variables)


_SCALARS: dict[int, Any] = {
    FD.TYPE_DOUBLE: graphene.Float,
    FD.TYPE_FLOAT: graphene.Float,
    FD.TYPE_INT64: Int64,
    FD.TYPE_SINT64: Int64,
    FD.TYPE_SFIXED64: Int64,
    FD.TYPE_UINT64: UInt64,
    FD.TYPE_FIXED64: UInt64,
    FD.TYPE_INT32: graphene.Int,
    FD.TYPE_SINT32: graphene.Int,
    FD.TYPE_SFIXED32: graphene.Int,
    FD.TYPE_UINT32: UInt32,
    FD.TYPE_FIXED32: UInt32,
    FD.TYPE_BOOL: graphene.Boolean,
    FD.TYPE_STRING: graphene.String,
    FD.TYPE_BYTES: Bytes,
}
_WELL_KNOWN_SCALARS: dict[str, Any] = {
    "google.protobuf.Timestamp": Timestamp,
    "google.protobuf.Duration": Duration,
    "google.protobuf.FieldMask": graphene.String,
    "google.protobuf.Struct": JSON,
    "google.protobuf.Value": JSON,
    "google.protobuf.ListValue": JSON,
    "google.protobuf.Any": JSON,
    "google.protobuf.Empty": JSON,
}


def _is_scalar_message(msg: descriptor.Descriptor) -> bool:
    """Messages GraphQL shows as one scalar: well-known types and messages without fields
    (GraphQL has no empty object types)."""
    return msg.full_name in WELL_KNOWN or not msg.fields


# -- per-request context -------------------------------------------------------------------


@dataclass
class GraphqlContext:
    """What resolvers need from the HTTP request: handlers and a Call factory."""

    handlers: Mapping[str, Handler]
    new_call: Callable[[MethodSpec], Call]
    calls: list[Call] = field(default_factory=list)

    def call(self, spec: MethodSpec) -> Call:
        call = self.new_call(spec)
        self.calls.append(call)
        return call


def graphql_error(error: ApiError, call: Call | None) -> GraphQLError:
    extensions: dict[str, Any] = {"code": error.code.name, "status": http_status(error)}
    if call is not None:
        extensions["requestId"] = call.request_id
    return GraphQLError(error.message, extensions=extensions)


# -- the builder ---------------------------------------------------------------------------


class GraphqlSchemaBuilder:
    def __init__(self, specs: Sequence[MethodSpec], descriptions: Descriptions) -> None:
        self.specs = [s for s in specs if not s.client_streaming]
        self.docs = descriptions
        self._names: dict[str, str] = {}
        self._objects: dict[str, Any] = {}
        self._inputs: dict[str, Any] = {}
        self._enums: dict[str, Any] = {}

    def build(self) -> graphene.Schema:
        roots: dict[str, dict[str, Any]] = {"query": {}, "mutation": {}, "subscription": {}}
        exposed = [(spec, self.operation(spec)) for spec in self.specs]
        self._assign_names([spec for spec, op in exposed if op])
        for spec, op in exposed:
            if not op:
                continue
            name = spec.graphql.field or _lower_camel(spec.name)
            if name in roots[op]:
                raise SchemaError(f"{spec.service}.{spec.name}: GraphQL {op} field {name!r} is already taken")
            roots[op][name] = spec
        if not roots["query"]:
            raise SchemaError("no RPC is exposed as a GraphQL query; GraphQL needs at least one")
        types = {kind: self._root_type(kind, fields) for kind, fields in roots.items() if fields}
        return graphene.Schema(
            query=types["query"],
            mutation=types.get("mutation"),
            subscription=types.get("subscription"),
            auto_camelcase=False,
        )

    @staticmethod
    def operation(spec: MethodSpec) -> str:
        """'query', 'mutation', 'subscription' or '' (hidden)."""
        op = spec.graphql.operation
        where = f"{spec.service}.{spec.name}"
        if op == options_pb2.GRAPHQL_OPERATION_HIDDEN:
            return ""
        if spec.server_streaming:
            if op not in (
                options_pb2.GRAPHQL_OPERATION_UNSPECIFIED,
                options_pb2.GRAPHQL_OPERATION_SUBSCRIPTION,
            ):
                raise SchemaError(f"{where}: a server-streaming method can only be a GraphQL subscription")
            return "subscription"
        if op == options_pb2.GRAPHQL_OPERATION_SUBSCRIPTION:
            raise SchemaError(f"{where}: only server-streaming methods can be GraphQL subscriptions")
        if op == options_pb2.GRAPHQL_OPERATION_QUERY:
            return "query"
        if op == options_pb2.GRAPHQL_OPERATION_MUTATION:
            return "mutation"
        return "query" if bindings_for(spec)[0].http_method == "GET" else "mutation"

    # -- names ---------------------------------------------------------------------------

    def _assign_names(self, specs: Sequence[MethodSpec]) -> None:
        """GraphQL names for every reachable message and enum: the name within its package
        (nested with '_'), qualified by the package only when two packages clash."""
        found: dict[str, descriptor.Descriptor | descriptor.EnumDescriptor] = {}

        def walk(msg: descriptor.Descriptor) -> None:
            if msg.full_name in found or msg.full_name in WELL_KNOWN:
                return
            found[msg.full_name] = msg
            for f in msg.fields:
                if f.enum_type is not None:
                    found[f.enum_type.full_name] = f.enum_type
                if f.message_type is not None:
                    walk(f.message_type)

        for spec in specs:
            walk(spec.descriptor.input_type)
            walk(spec.descriptor.output_type)
        short: dict[str, list[str]] = {}
        for full, d in found.items():
            short.setdefault(_short_name(d), []).append(full)
        for name, fulls in short.items():
            for full in fulls:
                d = found[full]
                qualified = name if len(fulls) == 1 else _pascal(d.file.package) + "_" + name
                self._names[full] = qualified

    def _name(self, d: descriptor.Descriptor | descriptor.EnumDescriptor) -> str:
        return self._names[d.full_name]

    # -- output types ----------------------------------------------------------------------

    def _object(self, msg: descriptor.Descriptor) -> Any:
        if _is_scalar_message(msg):
            return _WELL_KNOWN_SCALARS.get(msg.full_name, JSON)
        if msg.full_name in self._objects:
            return self._objects[msg.full_name]
        name = self._name(msg)
        attrs: dict[str, Any] = {"Meta": type("Meta", (), {"name": name, "description": self._doc(msg)})}
        if msg.GetOptions().map_entry:
            attrs["key"] = graphene.Field(
                graphene.NonNull(self._output_type(msg.fields_by_name["key"], single=True)),
                name="key",
                resolver=lambda root, info: root[0],
            )
            value_field = msg.fields_by_name["value"]
            attrs["value"] = graphene.Field(
                self._output_type(value_field, single=True),
                name="value",
                resolver=_value_resolver(value_field, lambda root: root[1]),
            )
        else:
            json_names = {f.json_name for f in msg.fields}
            for f in msg.fields:
                attrs[_attr(f.name)] = graphene.Field(
                    self._output_type(f), name=f.json_name, description=self._doc(f), resolver=_resolver(f)
                )
                if is_float_list(f):
                    sibling = _base64_name(f, json_names, msg)
                    attrs[f"{f.name}__base64"] = graphene.Field(
                        graphene.String,
                        name=sibling,
                        description=f"`{f.json_name}` as base64 of little-endian float32.",
                        resolver=_base64_resolver(f),
                    )
        self._objects[msg.full_name] = type(name, (graphene.ObjectType,), attrs)
        return self._objects[msg.full_name]

    def _output_type(self, f: descriptor.FieldDescriptor, single: bool = False) -> Any:
        if not single and is_map(f):
            entry = f.message_type
            return graphene.NonNull(graphene.List(graphene.NonNull(lambda entry=entry: self._object(entry))))
        base = self._base_type(f, self._object)
        if f.is_repeated and not single:
            return graphene.NonNull(graphene.List(graphene.NonNull(base)))
        if single or f.has_presence or f.cpp_type == FD.CPPTYPE_MESSAGE:
            return base
        return graphene.NonNull(base)

    def _base_type(
        self, f: descriptor.FieldDescriptor, of_message: Callable[[descriptor.Descriptor], Any]
    ) -> Any:
        if f.cpp_type == FD.CPPTYPE_ENUM:
            return self._enum(f.enum_type)
        if f.cpp_type != FD.CPPTYPE_MESSAGE:
            return _SCALARS[f.type]
        msg = f.message_type
        if msg.full_name in WRAPPERS:
            return _SCALARS[msg.fields_by_name["value"].type]
        if _is_scalar_message(msg):
            return _WELL_KNOWN_SCALARS.get(msg.full_name, JSON)
        return lambda msg=msg: of_message(msg)

    def _enum(self, e: descriptor.EnumDescriptor) -> Any:
        if e.full_name not in self._enums:
            members = enum.Enum(self._name(e), [(v.name, v.number) for v in e.values])
            docs = {v.number: self.docs.of(f"{e.full_name}.{v.name}") for v in e.values}
            type_doc = self.docs.of(e.full_name)
            self._enums[e.full_name] = graphene.Enum.from_enum(
                members, description=lambda value: type_doc if value is None else docs.get(value.value)
            )
        return self._enums[e.full_name]

    # -- input types -----------------------------------------------------------------------

    def _input(self, msg: descriptor.Descriptor) -> Any:
        if _is_scalar_message(msg):
            return _WELL_KNOWN_SCALARS.get(msg.full_name, JSON)
        if msg.full_name in self._inputs:
            return self._inputs[msg.full_name]
        name = self._name(msg) + "Input"
        attrs: dict[str, Any] = {"Meta": type("Meta", (), {"name": name, "description": self._doc(msg)})}
        for attname, (graphql_name, typ, doc) in self._argument_specs(msg).items():
            attrs[attname] = graphene.InputField(typ, name=graphql_name, description=doc)
        self._inputs[msg.full_name] = type(name, (graphene.InputObjectType,), attrs)
        return self._inputs[msg.full_name]

    def _argument_specs(self, msg: descriptor.Descriptor) -> dict[str, tuple[str, Any, str]]:
        """attname → (GraphQL name, type, description) for the fields of an input or RPC."""
        out = {}
        json_names = {f.json_name for f in msg.fields}
        for f in msg.fields:
            out[_attr(f.name)] = (f.json_name, self._input_type(f), self._doc(f))
            if is_float_list(f):
                out[f"{f.name}__base64"] = (
                    _base64_name(f, json_names, msg),
                    graphene.String,
                    f"`{f.json_name}` as base64 of little-endian float32; set this or `{f.json_name}`.",
                )
        return out

    def _input_type(self, f: descriptor.FieldDescriptor) -> Any:
        if is_map(f):
            entry = f.message_type
            return graphene.List(graphene.NonNull(lambda entry=entry: self._entry_input(entry)))
        base = self._base_type(f, self._input)
        return graphene.List(graphene.NonNull(base)) if f.is_repeated else base

    def _entry_input(self, entry: descriptor.Descriptor) -> Any:
        key = entry.full_name + "#input"
        if key not in self._inputs:
            name = self._name(entry) + "Input"
            value_field = entry.fields_by_name["value"]
            attrs = {
                "Meta": type("Meta", (), {"name": name}),
                "key": graphene.InputField(
                    graphene.NonNull(self._base_type(entry.fields_by_name["key"], self._input)), name="key"
                ),
                "value": graphene.InputField(self._base_type(value_field, self._input), name="value"),
            }
            self._inputs[key] = type(name, (graphene.InputObjectType,), attrs)
        return self._inputs[key]

    # -- root fields -----------------------------------------------------------------------

    def _root_type(self, kind: str, fields: dict[str, MethodSpec]) -> Any:
        attrs: dict[str, Any] = {"Meta": type("Meta", (), {"name": kind.capitalize()})}
        for name, spec in sorted(fields.items()):
            attname = _attname(name)
            args = {
                a: graphene.Argument(t, name=n, description=d)
                for a, (n, t, d) in self._argument_specs(spec.descriptor.input_type).items()
            }
            output = self._object(spec.descriptor.output_type)
            doc = self.docs.of(f"{spec.service}.{spec.name}")
            if kind == "subscription":
                attrs[attname] = graphene.Field(output, name=name, description=doc, args=args)
                attrs[f"subscribe_{attname}"] = _subscriber(spec)
            else:
                attrs[attname] = graphene.Field(
                    output, name=name, description=doc, args=args, resolver=_rpc_resolver(spec)
                )
        return type(kind.capitalize(), (graphene.ObjectType,), attrs)

    def _doc(self, d: Any) -> str | None:
        return self.docs.of(d.full_name) or None


# -- resolvers -----------------------------------------------------------------------------


def _resolver(f: descriptor.FieldDescriptor) -> Callable[..., Any]:
    name = f.name
    if is_map(f):
        return lambda root, info: sorted(getattr(root, name).items())
    if f.is_repeated:
        if f.cpp_type == FD.CPPTYPE_MESSAGE and _is_scalar_message(f.message_type):
            return lambda root, info: [_well_known_value(v) for v in getattr(root, name)]
        return lambda root, info: list(getattr(root, name))
    oneof = real_oneof(f)
    if oneof is not None:
        oneof_name = oneof.name
        return _value_resolver(
            f, lambda root: getattr(root, name) if root.WhichOneof(oneof_name) == name else None
        )
    if f.has_presence:
        return _value_resolver(f, lambda root: getattr(root, name) if root.HasField(name) else None)
    return _value_resolver(f, lambda root: getattr(root, name))


def _value_resolver(f: descriptor.FieldDescriptor, get: Callable[[Any], Any]) -> Callable[..., Any]:
    if f.cpp_type == FD.CPPTYPE_MESSAGE and _is_scalar_message(f.message_type):

        def resolve_well_known(root: Any, info: Any) -> Any:
            value = get(root)
            return None if value is None else _well_known_value(value)

        return resolve_well_known
    return lambda root, info: get(root)


def _well_known_value(msg: message.Message) -> Any:
    name = msg.DESCRIPTOR.full_name
    if name in WRAPPERS:
        return msg.value
    if name in ("google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"):
        return msg.ToJsonString()
    if name in WELL_KNOWN:
        return json_codec.to_json(msg)
    return {}  # a message without fields


def _base64_resolver(f: descriptor.FieldDescriptor) -> Callable[..., Any]:
    name = f.name
    return lambda root, info: json_codec.floats_to_base64(getattr(root, name))


def _rpc_resolver(spec: MethodSpec) -> Callable[..., Any]:
    async def resolve(root: Any, info: Any, **args: Any) -> Any:
        context: GraphqlContext = info.context
        call = None
        try:
            call = context.call(spec)
            request = request_from_args(spec, args)
            reply = await context.handlers[spec.path](call, request)
        except ApiError as e:
            raise graphql_error(e, call) from None
        # Responses GraphQL shows as a scalar (Empty, well-known types) are converted here.
        return _well_known_value(reply) if scalar else reply

    scalar = _is_scalar_message(spec.descriptor.output_type)
    return resolve


def _subscriber(spec: MethodSpec) -> Callable[..., AsyncIterator[Any]]:
    async def subscribe(root: Any, info: Any, **args: Any) -> AsyncIterator[Any]:
        context: GraphqlContext = info.context
        call = None
        try:
            call = context.call(spec)
            request = request_from_args(spec, args)
            iterator = await context.handlers[spec.path](call, request)
            try:
                while (item := await streaming.next_item(iterator, call)) is not streaming.END:
                    yield _well_known_value(item) if scalar else item
            finally:
                aclose = getattr(iterator, "aclose", None)
                if aclose is not None:
                    await aclose()
        except ApiError as e:
            raise graphql_error(e, call) from None

    scalar = _is_scalar_message(spec.descriptor.output_type)
    return subscribe


# -- arguments → request message -------------------------------------------------------------


def request_from_args(spec: MethodSpec, args: Mapping[str, Any]) -> message.Message:
    """Turns resolver arguments into the request message through the JSON decoder, so GraphQL
    validates exactly as REST does (oneofs, ranges, enum names) with the same messages."""
    request = spec.request_type()
    json_codec.decode(_json_of(spec.descriptor.input_type, args), request)
    return request


def _json_of(msg: descriptor.Descriptor, values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in msg.fields:
        value = values.get(_attr(f.name))
        encoded = values.get(f"{f.name}__base64") if is_float_list(f) else None
        if encoded is not None:
            if value is not None:
                raise JsonError(f.json_name, f"set {f.json_name} or {f.json_name}{BASE64_SUFFIX}, not both")
            value = encoded
        if value is None:
            continue
        out[f.json_name] = _json_value(f, value)
    return out


def _json_value(f: descriptor.FieldDescriptor, value: Any) -> Any:
    if is_map(f):
        entries: dict[str, Any] = {}
        value_field = f.message_type.fields_by_name["value"]
        for entry in value:
            key = str(entry["key"]).lower() if isinstance(entry["key"], bool) else str(entry["key"])
            if key in entries:
                raise JsonError(f"{f.json_name}[{key!r}]", "map key given twice")
            item = entry.get("value")
            entries[key] = None if item is None else _json_single(value_field, item)
        return entries
    if f.is_repeated and isinstance(value, list):
        if f.cpp_type not in (FD.CPPTYPE_MESSAGE, FD.CPPTYPE_ENUM):
            return value  # scalars are their own JSON: a vector is passed on whole, not item by item
        return [_json_single(f, v) for v in value]
    return _json_single(f, value)


def _json_single(f: descriptor.FieldDescriptor, value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    if (
        f.cpp_type == FD.CPPTYPE_MESSAGE
        and not _is_scalar_message(f.message_type)
        and isinstance(value, Mapping)
    ):
        return _json_of(f.message_type, value)
    return value


# -- helpers -------------------------------------------------------------------------------


def _short_name(d: descriptor.Descriptor | descriptor.EnumDescriptor) -> str:
    package = d.file.package
    inner = d.full_name[len(package) + 1 :] if package else d.full_name
    return inner.replace(".", "_")


def _pascal(package: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[._]", package) if part)


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _attname(graphql_name: str) -> str:
    return _attr(re.sub(r"(?<!^)(?=[A-Z])", "_", graphql_name).lower())


def _attr(name: str) -> str:
    """Python-side name of a field: graphene turns types into dataclasses, so no keywords."""
    return f"{name}_" if keyword.iskeyword(name) else name


def _base64_name(f: descriptor.FieldDescriptor, taken: set[str], msg: descriptor.Descriptor) -> str:
    name = f.json_name + BASE64_SUFFIX
    if name in taken:
        raise SchemaError(f"{msg.full_name}: field {name!r} clashes with the base64 form of {f.json_name!r}")
    return name


def build_schema(specs: Sequence[MethodSpec], descriptions: Descriptions) -> graphene.Schema:
    return GraphqlSchemaBuilder(specs, descriptions).build()


def sdl(schema: graphene.Schema) -> str:
    return print_schema(schema.graphql_schema) + "\n"
