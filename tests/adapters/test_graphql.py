"""GraphQL derived from the protos: types, scalars, maps, oneofs, operations, errors, limits,
served by a gateway that knows the test-only EchoService only through its descriptors."""

from __future__ import annotations

import base64

import grpc
import pytest

from citadel.adapters.errors import HTTP_STATUS


def gql(http, query: str, variables: dict | None = None, **kwargs) -> dict:
    response = http.post("/graphql", json={"query": query, "variables": variables or {}}, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def sdl(http) -> str:
    query = "{ __schema { types { name kind description } } }"
    return gql(http, query)["data"]["__schema"]["types"]


def test_schema_types_come_from_the_messages_with_comments_as_descriptions(http):
    types = {t["name"]: t for t in sdl(http)}
    assert types["Book"]["kind"] == "OBJECT" and types["Book"]["description"] == "A book on a shelf."
    assert types["NestedInput"]["kind"] == "INPUT_OBJECT"
    assert types["Color"]["kind"] == "ENUM"
    assert types["EchoRequest_LabelsEntry"]["kind"] == "OBJECT"  # maps are entry lists
    for scalar in ("Int64", "UInt64", "UInt32", "Bytes", "JSON", "Timestamp", "Duration"):
        assert types[scalar]["kind"] == "SCALAR", scalar
    fields = gql(http, '{ __type(name: "Query") { fields { name description } } }')["data"]["__type"][
        "fields"
    ]
    by_name = {f["name"]: f["description"] for f in fields}
    assert by_name["book"].startswith("Reads a book by its resource name")  # option field: "book"
    assert "raise" in by_name  # option operation: QUERY
    assert "getCollection" in by_name and "searchVectors" in by_name
    assert "reflect" not in by_name  # option operation: HIDDEN
    mutations = gql(http, '{ __type(name: "Mutation") { fields { name } } }')["data"]["__type"]["fields"]
    assert {"echo", "updateBook", "deleteBook", "createCollection"} <= {f["name"] for f in mutations}
    subscriptions = gql(http, '{ __type(name: "Subscription") { fields { name } } }')["data"]["__type"][
        "fields"
    ]
    assert "count" in {f["name"] for f in subscriptions}


ECHO_ALL = """
mutation Echo($labels: [EchoRequest_LabelsEntryInput!], $byNumber: [EchoRequest_NestedByNumberEntryInput!]) {
  echo(id: "g", count: "-9007199254740993", bigCount: 18446744073709551615, unsignedSmall: 4000000000,
       payload: "AP8=", color: COLOR_GREEN, colors: [COLOR_BLUE], tags: ["a"], numbers: ["1", 2],
       embedding: [0.5, 1.5], labels: $labels, nestedByNumber: $byNumber,
       nested: {text: "n", child: {big: "3"}}, items: [{text: "i"}], choiceText: "c",
       at: "2024-05-01T12:00:00Z", ttl: "2s", attributes: {year: 2020, tags: ["x"]}, anything: 5,
       maybeCount: "0", maybeFlag: false, optionalSmall: 0, totals: [{key: "t", value: "9"}]) {
    request {
      id count bigCount unsignedSmall payload color colors tags numbers embedding embeddingBase64
      labels { key value } nestedByNumber { key value { text child { big } } }
      nested { text child { big } } items { text } choiceText choiceNumber choiceNested { text }
      at ttl attributes anything maybeCount maybeText maybeFlag optionalSmall small flag
      totals { key value }
    }
    protocol
  }
}
"""


def test_every_field_kind_round_trips(http):
    variables = {
        "labels": [{"key": "team", "value": "search"}],
        "byNumber": [{"key": 7, "value": {"text": "seven"}}],
    }
    data = gql(http, ECHO_ALL, variables)
    assert "errors" not in data, data
    got = data["data"]["echo"]
    assert got["protocol"] == "graphql"
    assert got["request"] == {
        "id": "g",
        "count": "-9007199254740993",
        "bigCount": "18446744073709551615",
        "unsignedSmall": 4000000000,
        "payload": "AP8=",
        "color": "COLOR_GREEN",
        "colors": ["COLOR_BLUE"],
        "tags": ["a"],
        "numbers": ["1", "2"],
        "embedding": [0.5, 1.5],
        "embeddingBase64": base64.b64encode(b"\x00\x00\x00?\x00\x00\xc0?").decode(),
        "labels": [{"key": "team", "value": "search"}],
        "nestedByNumber": [{"key": 7, "value": {"text": "seven", "child": None}}],
        "nested": {"text": "n", "child": {"big": "3"}},
        "items": [{"text": "i"}],
        "choiceText": "c",
        "choiceNumber": None,
        "choiceNested": None,
        "at": "2024-05-01T12:00:00Z",
        "ttl": "2s",
        "attributes": {"year": 2020, "tags": ["x"]},
        "anything": 5,
        "maybeCount": "0",
        "maybeText": None,
        "maybeFlag": False,
        "optionalSmall": 0,
        "small": 0,
        "flag": False,
        "totals": [{"key": "t", "value": "9"}],
    }


def test_base64_embedding_argument(http):
    encoded = base64.b64encode(b"\x00\x00\x80?\x00\x00\x00@").decode()  # [1.0, 2.0]
    got = gql(http, f'mutation {{ echo(embeddingBase64: "{encoded}") {{ request {{ embedding }} }} }}')
    assert got["data"]["echo"]["request"]["embedding"] == [1.0, 2.0]
    both = gql(http, f'mutation {{ echo(embedding: [1], embeddingBase64: "{encoded}") {{ protocol }} }}')
    assert both["errors"][0]["message"] == "embedding: set embedding or embeddingBase64, not both"


def test_oneof_allows_at_most_one_member(http):
    got = gql(http, 'mutation { echo(choiceText: "a", choiceNumber: "1") { protocol } }')
    error = got["errors"][0]
    assert error["message"] == "choiceNumber: only one of oneof 'choice' may be set; 'choiceText' is too"
    assert error["extensions"]["code"] == "INVALID_ARGUMENT" and error["extensions"]["status"] == 400


@pytest.mark.parametrize(
    ("argument", "problem"),
    [
        ('count: "1.5"', "Int64 must be an integer or a string of digits"),
        ("unsignedSmall: -1", "-1 is out of range for UInt32"),
        ('payload: "!!"', "is not valid base64"),
        ("color: PURPLE", "Value 'PURPLE' does not exist in 'Color' enum"),
    ],
)
def test_bad_scalar_values_fail_validation_with_400(http, argument, problem):
    response = http.post("/graphql", json={"query": f"mutation {{ echo({argument}) {{ protocol }} }}"})
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert problem in error["message"]
    assert error["extensions"]["code"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"n": {"a": 1}}, "Int64 must be an integer or a string of digits"),
        ({"n": 1.5e300}, "Int64 must be an integer or a string of digits"),
        ({"u": -1}, "-1 is out of range for UInt32"),
        ({"t": 7}, "String cannot represent a non string value: 7"),
        ({}, "Variable '$r' of required type 'String!' was not provided."),
    ],
    ids=["object", "huge-float", "negative-uint32", "int-for-string", "missing-required"],
)
def test_variables_of_the_wrong_type_are_400_with_a_code(http, variables, problem):
    """Like a validation error, not a 200 result with uncoded errors (as graphql-core answers)."""
    query = (
        "mutation($n: Int64, $u: UInt32, $t: String, $r: String!) "
        "{ echo(count: $n, unsignedSmall: $u, id: $t, maybeText: $r) { protocol } }"
    )
    given = {"r": "x", **variables} if variables else {}
    response = http.post("/graphql", json={"query": query, "variables": given})
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert any(problem in e["message"] for e in errors), errors
    assert all(e["extensions"]["code"] == "INVALID_ARGUMENT" for e in errors)


@pytest.mark.parametrize(
    "code", [c for c in grpc.StatusCode if c != grpc.StatusCode.OK], ids=lambda c: c.name
)
def test_rpc_errors_carry_code_and_http_status(http, code):
    got = gql(
        http,
        f'{{ raise(code: "{code.name}", message: "boom") {{ message }} }}',
        headers={"X-Request-Id": "g1"},
    )
    assert got["data"] == {"raise": None}
    error = got["errors"][0]
    assert error["message"] == "boom" and error["path"] == ["raise"]
    assert error["extensions"] == {"code": code.name, "status": HTTP_STATUS[code], "requestId": "g1"}


def test_partial_results_with_several_root_fields(http):
    got = gql(
        http,
        '{ ok: book(name: "shelves/a/books/b") { pages } missing: book(name: "shelves/a/books/missing") { pages } }',
    )
    assert got["data"] == {"ok": {"pages": 17}, "missing": None}
    assert got["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_headers_and_deadline_reach_the_call(http):
    got = gql(
        http,
        "mutation { echo { metadata { key value } deadlineSeconds requestId } }",
        headers={"Authorization": "Bearer q", "X-Request-Timeout": "3", "X-Request-Id": "gq-7"},
    )["data"]["echo"]
    assert {"key": "authorization", "value": "Bearer q"} in got["metadata"]
    assert 2.0 < got["deadlineSeconds"] <= 3.0
    assert got["requestId"] == "gq-7"


def test_empty_message_response_is_json(http):
    assert gql(http, 'mutation { deleteBook(name: "shelves/a/books/b") }')["data"] == {"deleteBook": {}}


def test_get_runs_queries_only(http):
    response = http.get("/graphql", params={"query": '{ book(name: "shelves/a/books/b") { title } }'})
    assert response.json()["data"]["book"]["title"] == "Title of shelves/a/books/b"
    response = http.get("/graphql", params={"query": "mutation { echo { protocol } }"})
    assert response.status_code == 405 and response.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"query": ', "request body is not valid JSON"),
        (b'{"variables": {}}', "'query' is required and must be a string"),
        (b'{"query": "{ book { title } ", "variables": {}}', "Syntax Error"),
        (b'{"query": "{ nope }"}', "Cannot query field 'nope' on type 'Query'"),
        (b'{"query": "{ book { title } }", "variables": [1]}', "'variables' must be a JSON object"),
    ],
)
def test_bad_requests_are_400(http, body, problem):
    response = http.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert problem in response.json()["errors"][0]["message"]


def test_depth_and_fan_out_limits(http):
    deep = '{ searchVectors(collection: "x") { results { id } } }'
    assert http.post("/graphql", json={"query": deep}).status_code == 200
    nested = "child { " * 25 + "text" + " }" * 25
    response = http.post(
        "/graphql", json={"query": f"mutation {{ echo {{ request {{ nested {{ {nested} }} }} }} }}"}
    )
    assert response.status_code == 400
    assert "levels deep; the limit is 20" in response.json()["errors"][0]["message"]
    fan_out = " ".join(f'b{i}: book(name: "shelves/a/books/b") {{ pages }}' for i in range(40))
    response = http.post("/graphql", json={"query": "{ " + fan_out + " }"})
    assert response.status_code == 400
    assert "selects 40 root fields; the limit is 32" in response.json()["errors"][0]["message"]


def test_graphiql_page_for_browsers_with_local_assets(http):
    response = http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200 and "GraphiQL" in response.text
    assert "http://" not in response.text and "https://" not in response.text  # nothing from the internet
    for asset in ("graphiql/graphiql.min.js", "graphiql/react.production.min.js", "citadel/graphiql.js"):
        assert http.get(f"/assets/{asset}").status_code == 200, asset
