"""google.api.http rules → Bindings, HTTP requests → request messages, replies → JSON values
(adapters/bindings.py). The test-only EchoService has the rules the product protos lack:
additional_bindings, multi-segment templates, a nested path field, a named body field and
response_body. Rules that must stop the gateway are compiled into a private descriptor pool."""

from __future__ import annotations

import grpc
import orjson
import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, json_format

from citadel.adapters import json_codec
from citadel.adapters.bindings import Binding, BindingError, bindings_for
from citadel.adapters.json_codec import JsonError
from citadel.options.v1 import options_pb2
from citadel.server.descriptors import SERVICES
from citadel.server.methods import MethodSpec, method_specs
from tests.adapters.echo import DESCRIPTOR_SET, SERVICE, echo_pb2

SPECS = {spec.name: spec for spec in method_specs([SERVICE])}


def binding(method: str, index: int = 0) -> Binding:
    return bindings_for(SPECS[method])[index]


def build(method: str, index: int, path: str, query: str = "", body: bytes = b""):
    b = binding(method, index)
    values = b.template.match(path)
    assert values is not None, f"{path} does not match {b.template.source}"
    pairs = [tuple(p.split("=", 1)) for p in query.split("&")] if query else []
    return b.build_request(values, pairs, body)


# --- rules → bindings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "rows"),
    [
        (
            "Echo",
            [
                ("POST", "/v1/echo:run", "*", ""),
                ("GET", "/v1/echo/{id}", "", ""),
                ("PUT", "/v1/echo/{id}/nested", "nested", ""),
            ],
        ),
        ("Reflect", [("GET", "/v1/reflect/{id}", "", "request")]),
        (
            "GetBook",
            [("GET", "/v1/{name=shelves/*/books/*}", "", ""), ("GET", "/v1/archive/{name=**}:read", "", "")],
        ),
        ("UpdateBook", [("PATCH", "/v1/{book.name=shelves/*/books/*}", "book", "")]),
        ("DeleteBook", [("DELETE", "/v1/shelves/*/books/{name}", "", "")]),
        ("Raise", [("POST", "/v1/raise", "*", "")]),
        ("Count", [("GET", "/v1/count/{to}", "", "")]),
    ],
)
def test_each_rule_and_additional_binding_becomes_a_binding(method, rows):
    found = bindings_for(SPECS[method])
    assert [(b.http_method, b.template.source, b.body, b.response_body) for b in found] == rows
    assert [b.index for b in found] == list(range(len(rows)))
    assert all(b.spec is SPECS[method] for b in found)


@pytest.mark.parametrize(
    ("method", "index", "path_fields", "owned", "body_field", "response_field"),
    [
        ("Echo", 0, (), set(), None, None),  # body "*": nothing is "owned", the query is closed
        ("Echo", 1, ("id",), {"id"}, None, None),
        ("Echo", 2, ("id",), {"id", "nested"}, "nested", None),
        ("Reflect", 0, ("id",), {"id"}, None, "request"),
        ("GetBook", 1, ("name",), {"name"}, None, None),
        ("UpdateBook", 0, ("book.name",), {"book.name", "book"}, "book", None),
        ("DeleteBook", 0, ("name",), {"name"}, None, None),  # a bare `*` binds nothing
    ],
)
def test_binding_fields(method, index, path_fields, owned, body_field, response_field):
    b = binding(method, index)
    assert b.path_fields == path_fields
    assert b.owned_fields == frozenset(owned)
    assert (b.body_field.name if b.body_field else None) == body_field
    assert (b.response_field.name if b.response_field else None) == response_field


def test_every_product_rpc_has_bindings_that_parse():
    specs = method_specs(SERVICES)
    for spec in specs:
        found = bindings_for(spec)
        assert found and found[0].index == 0, spec.path
        assert all(b.http_method in ("GET", "PUT", "POST", "DELETE", "PATCH") for b in found)
    routes = [(b.http_method, b.template.source) for spec in specs for b in bindings_for(spec)]
    assert len(routes) == len(set(routes)), "two RPCs share a route"


# --- HTTP request → request message ----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "index", "path", "query", "body", "expected"),
    [
        # body "*": the whole body is the request
        ("Echo", 0, "/v1/echo:run", "", b'{"id": "a", "count": "7"}', {"id": "a", "count": "7"}),
        ("Echo", 0, "/v1/echo:run", "", b"", {}),
        ("Echo", 0, "/v1/echo:run", "", b" \n\t ", {}),  # blank is no body
        ("Echo", 0, "/v1/echo:run", "float_encoding=base64", b"{}", {}),
        # GET: path and query
        (
            "Echo",
            1,
            "/v1/echo/a%20b",
            "small=3&tags=x&tags=y",
            b"",
            {"id": "a b", "small": 3, "tags": ["x", "y"]},
        ),
        ("Echo", 1, "/v1/echo/%E2%9C%93", "", b"", {"id": "\u2713"}),
        # a named body field: the body is that field's JSON, the rest comes from path and query
        (
            "Echo",
            2,
            "/v1/echo/e1/nested",
            "small=1",
            b'{"text": "t", "big": 9007199254740993}',
            {"id": "e1", "small": 1, "nested": {"text": "t", "big": "9007199254740993"}},
        ),
        ("Echo", 2, "/v1/echo/e1/nested", "", b"null", {"id": "e1"}),  # null: not set
        ("Echo", 2, "/v1/echo/e1/nested", "", b"{}", {"id": "e1", "nested": {}}),  # {}: set, empty
        # multi-segment templates keep the whole resource name
        ("GetBook", 0, "/v1/shelves/s1/books/b2", "", b"", {"name": "shelves/s1/books/b2"}),
        ("GetBook", 1, "/v1/archive/a/b/c:read", "", b"", {"name": "a/b/c"}),
        ("GetBook", 1, "/v1/archive/a%2Fb/c:read", "", b"", {"name": "a%2Fb/c"}),  # %2F stays encoded
        # the path wins over the body for the same field; the rest of the body is kept
        (
            "UpdateBook",
            0,
            "/v1/shelves/s1/books/b2",
            "validate_only=true",
            b'{"name": "shelves/evil/books/x", "title": "Dune", "pages": 412}',
            {"book": {"name": "shelves/s1/books/b2", "title": "Dune", "pages": 412}, "validateOnly": True},
        ),
        ("DeleteBook", 0, "/v1/shelves/anything/books/b9", "", b"", {"name": "b9"}),
        (
            "Count",
            0,
            "/v1/count/5",
            "fail_code=NOT_FOUND&failAfter=2",
            b"",
            {"to": 5, "failCode": "NOT_FOUND", "failAfter": 2},
        ),
        ("Reflect", 0, "/v1/reflect/r1", "color=COLOR_BLUE", b"", {"id": "r1", "color": "COLOR_BLUE"}),
    ],
)
def test_build_request(method, index, path, query, body, expected):
    msg = build(method, index, path, query, body)
    assert type(msg) is SPECS[method].request_type
    assert json_format.MessageToDict(msg) == expected


@pytest.mark.parametrize(
    ("method", "index", "path", "query", "body", "message"),
    [
        (
            "Echo",
            0,
            "/v1/echo:run",
            "small=1",
            b"{}",
            "query parameter 'small': this method takes its fields in the JSON body, not the query",
        ),
        ("Echo", 0, "/v1/echo:run", "", b"[1]", "expected a JSON object (EchoRequest), got an array"),
        ("Echo", 0, "/v1/echo:run", "", b"null", "expected a JSON object (EchoRequest), got null"),
        ("Echo", 0, "/v1/echo:run", "", b'{"id": 1}', "id: expected a string, got number 1"),
        ("Echo", 0, "/v1/echo:run", "", b'{"id": "a"', "request body is not valid JSON: "),
        ("Echo", 1, "/v1/echo/a", "", b'{"id": "b"}', "GET /v1/echo/{id} takes no request body"),
        ("Echo", 1, "/v1/echo/a", "id=b", b"", "query parameter 'id': 'id' is set by the URL path or body"),
        (
            "Echo",
            2,
            "/v1/echo/a/nested",
            "nested.text=x",
            b"{}",
            "query parameter 'nested.text': 'nested' is set by the URL path or body",
        ),
        (
            "Echo",
            2,
            "/v1/echo/a/nested",
            "",
            b'{"txt": "x"}',
            "nested.txt: unknown field; Nested has fields text, big, child",
        ),
        (
            "Echo",
            2,
            "/v1/echo/a/nested",
            "",
            b'"x"',
            "nested: expected a JSON object (Nested), got string 'x'",
        ),
        (
            "UpdateBook",
            0,
            "/v1/shelves/s/books/b",
            "book.title=x",
            b"{}",
            "query parameter 'book.title': 'book' is set by the URL path or body",
        ),
        (
            "UpdateBook",
            0,
            "/v1/shelves/s/books/b",
            "",
            b'{"pages": "many"}',
            "book.pages: expected an integer (int32), got string 'many'",
        ),
        (
            "Count",
            0,
            "/v1/count/five",
            "",
            b"",
            "path parameter 'to': expected an integer (int32), got string 'five'",
        ),
        (
            "Count",
            0,
            "/v1/count/9999999999",
            "",
            b"",
            "path parameter 'to': 9999999999 is out of range for int32",
        ),
    ],
)
def test_a_request_that_does_not_map_is_invalid_argument_naming_the_part(
    method, index, path, query, body, message
):
    with pytest.raises(JsonError) as refused:
        build(method, index, path, query, body)
    assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.message.startswith(message)


# --- reply → JSON value ----------------------------------------------------------------------


def echo_reply() -> echo_pb2.EchoResponse:
    reply = echo_pb2.EchoResponse(request_id="r1", protocol="rest")
    reply.request.id = "x"
    reply.request.count = 2**60
    reply.request.embedding.extend([0.5, 1.0])
    reply.metadata["k"] = "v"
    return reply


@pytest.mark.parametrize(
    ("method", "reply", "floats_base64", "expected"),
    [
        (
            "Echo",
            echo_reply(),
            False,
            {
                "request": {"id": "x", "count": str(2**60), "embedding": [0.5, 1.0]},
                "metadata": {"k": "v"},
                "requestId": "r1",
                "protocol": "rest",
            },
        ),
        ("Reflect", echo_reply(), False, {"id": "x", "count": str(2**60), "embedding": [0.5, 1.0]}),
        ("Reflect", echo_reply(), True, {"id": "x", "count": str(2**60), "embedding": "AAAAPwAAgD8="}),
        ("Reflect", echo_pb2.EchoResponse(request_id="r1"), False, None),  # response_body unset: null
        ("Reflect", echo_pb2.EchoResponse(request=echo_pb2.EchoRequest()), False, {}),  # set, empty
        ("Echo", echo_pb2.EchoResponse(), False, {}),
    ],
)
def test_response_value(method, reply, floats_base64, expected):
    value = binding(method).response_value(reply, json_codec.Encoder(floats_base64))
    assert orjson.loads(json_codec.dumps(value)) == expected


# --- rules that stop the gateway -------------------------------------------------------------


def synthetic_spec(
    rules: list[http_pb2.HttpRule | None], extra_fields: tuple[str, ...] = ()
) -> list[MethodSpec]:
    """A service `x.Bad` with one method per rule (None: no rule), taking an EchoRequest (or,
    with extra_fields, a message of those string fields) and answering an EchoResponse."""
    pool = descriptor_pool.DescriptorPool()
    for file in DESCRIPTOR_SET.file:
        pool.Add(file)
    proto = descriptor_pb2.FileDescriptorProto(
        name="x/bad.proto",
        package="x",
        syntax="proto3",
        dependency=[
            "citadel/testing/v1/echo.proto",
            "google/api/annotations.proto",
            "citadel/options/v1/options.proto",
        ],
    )
    request = ".citadel.testing.v1.EchoRequest"
    if extra_fields:
        msg = proto.message_type.add(name="Other")
        for number, name in enumerate(extra_fields, start=1):
            msg.field.add(
                name=name,
                number=number,
                type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
            )
        request = ".x.Other"
    service = proto.service.add(name="Bad")
    for i, rule in enumerate(rules):
        method = service.method.add(
            name=f"M{i}", input_type=request, output_type=".citadel.testing.v1.EchoResponse"
        )
        method.options.Extensions[options_pb2.access].role = options_pb2.ROLE_READER
        if rule is not None:
            method.options.Extensions[annotations_pb2.http].CopyFrom(rule)
    pool.Add(proto)
    return method_specs([pool.FindServiceByName("x.Bad")])


R = http_pb2.HttpRule


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        (R(body="*"), "x.Bad.M0: google.api.http rule has no pattern"),
        (R(get="/v1/{id"), "x.Bad.M0: '/v1/{id': unbalanced '{'"),
        (R(get="v1/x"), "x.Bad.M0: 'v1/x': must start with '/'"),
        (R(get="/v1/{nope}"), "x.Bad.M0: path variable 'nope': EchoRequest has no field 'nope'"),
        (R(get="/v1/{nested.nope}"), "x.Bad.M0: path variable 'nested.nope': Nested has no field 'nope'"),
        (R(get="/v1/{tags}"), "x.Bad.M0: path variable 'tags': 'tags' is repeated"),
        (R(get="/v1/{labels}"), "x.Bad.M0: path variable 'labels': 'labels' is repeated"),  # a map
        (R(get="/v1/{items.text}"), "x.Bad.M0: path variable 'items.text': 'items' is repeated"),
        (R(get="/v1/{id.x}"), "x.Bad.M0: path variable 'id.x': 'id' is not a message"),
        (R(get="/v1/{nested}"), "x.Bad.M0: path variable 'nested' must be a scalar field"),
        (R(get="/v1/{at}"), "x.Bad.M0: path variable 'at' must be a scalar field"),
        (R(post="/v1/x", body="nope"), "x.Bad.M0: body 'nope' is not a top-level field of EchoRequest"),
        (R(post="/v1/x", body="nested.text"), "x.Bad.M0: body 'nested.text' is not a top-level field"),
        (R(get="/v1/x", body="*"), "x.Bad.M0: GET /v1/x may not take a body"),
        (R(delete="/v1/x", body="nested"), "x.Bad.M0: DELETE /v1/x may not take a body"),
        (
            R(custom=http_pb2.CustomHttpPattern(kind="get", path="/v1/x"), body="*"),
            "x.Bad.M0: GET /v1/x may not take a body",
        ),
        (
            R(get="/v1/x", response_body="nope"),
            "x.Bad.M0: response_body 'nope' is not a field of the response",
        ),
        (
            R(get="/v1/x", additional_bindings=[R(get="/v1/y", additional_bindings=[R(get="/v1/z")])]),
            "x.Bad.M0: additional_bindings may not nest",
        ),
        (R(get="/v1/x", additional_bindings=[R(get="/v1/{nope}")]), "x.Bad.M0: path variable 'nope'"),
    ],
)
def test_a_rule_that_cannot_be_served_stops_start_up_naming_the_rpc(rule, problem):
    (spec,) = synthetic_spec([rule])
    with pytest.raises(BindingError) as refused:
        bindings_for(spec)
    assert str(refused.value).startswith(problem)


def test_a_request_field_named_like_an_adapter_parameter_is_refused_unless_the_body_is_everything():
    clash, fine = synthetic_spec(
        [R(get="/v1/x"), R(post="/v1/y", body="*")], extra_fields=("float_encoding",)
    )
    with pytest.raises(
        BindingError, match="x.Bad.M0: request field 'float_encoding' clashes with the query parameter"
    ):
        bindings_for(clash)
    assert bindings_for(fine)[0].body == "*"


def test_an_rpc_without_a_rule_is_posted_to_its_grpc_path_with_body_star():
    (spec,) = synthetic_spec([None])
    (b,) = bindings_for(spec)
    assert (b.http_method, b.template.source, b.body, b.response_body, b.index) == (
        "POST",
        "/x.Bad/M0",
        "*",
        "",
        0,
    )
    assert b.template.match("/x.Bad/M0") == {}
    msg = b.build_request({}, [], b'{"id": "i"}')
    assert msg.id == "i"


@pytest.mark.parametrize(
    ("rule", "method", "source", "body"),
    [
        (R(custom=http_pb2.CustomHttpPattern(kind="head", path="/v1/x")), "HEAD", "/v1/x", ""),
        (R(put="/v1/{nested.child.text}", body="*"), "PUT", "/v1/{nested.child.text}", "*"),
        (R(get="/v1/{at.seconds}"), "GET", "/v1/{at.seconds}", ""),  # a scalar inside a well-known type
        (R(patch="/v1/{choice_nested.text}", body="items"), "PATCH", "/v1/{choice_nested.text}", "items"),
    ],
)
def test_rules_that_can_be_served(rule, method, source, body):
    (spec,) = synthetic_spec([rule])
    (b,) = bindings_for(spec)
    assert (b.http_method, b.template.source, b.body) == (method, source, body)


@pytest.mark.parametrize(
    ("rule", "path", "body", "expected"),
    [
        # a deep path field beside a body "*" that fills its siblings
        (
            R(put="/v1/{nested.child.text}", body="*"),
            "/v1/deep",
            b'{"nested": {"text": "top", "child": {"big": "3", "text": "from-body"}}}',
            {"nested": {"text": "top", "child": {"text": "deep", "big": "3"}}},
        ),
        (R(get="/v1/{at.seconds}"), "/v1/60", b"", {"at": "1970-01-01T00:01:00Z"}),
        # a repeated body field: the body is its JSON array
        (
            R(patch="/v1/{choice_nested.text}", body="items"),
            "/v1/c",
            b'[{"text": "a"}, {"big": "1"}]',
            {"choiceNested": {"text": "c"}, "items": [{"text": "a"}, {"big": "1"}]},
        ),
        (R(post="/v1/{id}", body="labels"), "/v1/i", b'{"k": "v"}', {"id": "i", "labels": {"k": "v"}}),
        (R(post="/v1/{id}", body="count"), "/v1/i", b'"12"', {"id": "i", "count": "12"}),
    ],
)
def test_build_request_for_nested_path_fields_and_named_bodies(rule, path, body, expected):
    (spec,) = synthetic_spec([rule])
    (b,) = bindings_for(spec)
    msg = b.build_request(b.template.match(path), [], body)
    assert json_format.MessageToDict(msg) == expected


@pytest.mark.parametrize(
    ("response_body", "expected"),
    [
        ("request_id", "r1"),
        ("metadata", {"k": "v"}),
        ("protocol", "rest"),
        ("deadline_seconds", None),  # an unset message field: null
    ],
)
def test_response_body_may_pick_any_kind_of_field(response_body, expected):
    (spec,) = synthetic_spec([R(get="/v1/x", response_body=response_body)])
    (b,) = bindings_for(spec)
    value = b.response_value(echo_reply(), json_codec.Encoder())
    assert value == expected
