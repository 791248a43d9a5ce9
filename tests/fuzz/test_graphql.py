"""GraphQL fuzzing against a real gateway: generated operations for every root field, with
arguments of the wrong types (hypothesis-graphql's negative mode), variables of any JSON shape,
deep nesting of selections, fragments and input values, and aliases past the fan-out limit.

Every answer is clean: no 5xx, every error carries `extensions.code` (and `extensions.status`),
a request that cannot run is 400 with no `data`, and nothing looks like a stack trace.
"""

from __future__ import annotations

import json
from pathlib import Path

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from citadel.adapters.graphql_app import MAX_DEPTH, MAX_ROOT_FIELDS
from tests.fuzz.budget import RANDOM, examples

SDL = Path(__file__).resolve().parents[2] / "generated" / "citadel" / "schema.graphql"
SCHEMA = graphql.build_schema(SDL.read_text())
ROOTS = [  # (operation kind, root field name, field)
    (kind, name, root.fields[name])
    for kind, root in (("query", SCHEMA.query_type), ("mutation", SCHEMA.mutation_type))
    for name in sorted(root.fields)
]
LEAKS = ("Traceback", 'File "', "site-packages", "Error object at 0x")

FUZZ_SETTINGS = settings(
    max_examples=examples(12),
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

_ints64 = st.integers(-(2**63), 2**63 - 1)
_json_literals = st.sampled_from(['{a: 1, b: [1, "x", null], c: {d: true}}', "[1, 2.5]", '"s"', "null", "{}"])
CUSTOM_SCALARS = {
    "Int64": st.one_of(_ints64.map(nodes.Int), _ints64.map(nodes.String)),
    "UInt64": st.one_of(st.integers(0, 2**64 - 1).map(nodes.String), st.integers(-5, 5).map(nodes.Int)),
    "UInt32": st.integers(-5, 2**32 + 5).map(nodes.Int),
    "Bytes": st.one_of(st.sampled_from(["", "AAAA", "!!", "AACAPwAAAD8="]), st.text(max_size=8)).map(
        nodes.String
    ),
    "Timestamp": st.one_of(
        st.sampled_from(["2024-02-29T12:00:00Z", "1970-01-01T00:00:00.5+02:00", "9999-99-99"]),
        st.text(max_size=12),
    ).map(nodes.String),
    "Duration": st.one_of(st.sampled_from(["1.5s", "-3s", "s", "1e9s"]), st.text(max_size=6)).map(
        nodes.String
    ),
    "JSON": _json_literals.map(graphql.parse_value),
}


@pytest.fixture(scope="module")
def http(fuzz_gateway) -> httpx.Client:
    with httpx.Client(base_url=fuzz_gateway.http_url, timeout=60.0) as client:
        yield client


def post(http: httpx.Client, query: str, variables: dict | None = None) -> tuple[int, dict]:
    """Sends the operation and checks the answer is clean whatever it was; returns it."""
    body: dict = {"query": query}
    if variables is not None:
        body["variables"] = variables
    response = http.post("/graphql", json=body)
    note(f"{response.status_code}: {response.text[:1500]}")
    assert response.status_code < 500, response.text
    assert not any(leak in response.text for leak in LEAKS), response.text
    payload = response.json()
    errors = payload.get("errors", [])
    for error in errors:
        extensions = error.get("extensions") or {}
        assert isinstance(error.get("message"), str) and error["message"], error
        assert isinstance(extensions.get("code"), str), f"error without extensions.code: {error}"
        assert isinstance(extensions.get("status"), int), f"error without extensions.status: {error}"
    if response.status_code == 200:
        assert "data" in payload, payload
    else:
        # A request that could not run: errors only, each saying why.
        assert errors and "data" not in payload, payload
    return response.status_code, payload


BUILT_IN = {"Int", "Float", "String", "ID", "Boolean"}


def _violatable(field: graphql.GraphQLField) -> bool:
    """Whether hypothesis-graphql's negative mode has something to break: an argument of a
    built-in scalar or enum type, or a required one (the others are covered below, by literals
    and variables of any kind)."""
    for arg in field.args.values():
        named = graphql.get_named_type(arg.type)
        if graphql.is_required_argument(arg) or isinstance(named, graphql.GraphQLEnumType):
            return True
        if isinstance(named, graphql.GraphQLScalarType) and named.name in BUILT_IN:
            return True
    return False


GENERATORS = {"query": queries, "mutation": mutations}


def cases() -> list:
    """Every root field with valid arguments, and those that can be broken with wrong ones."""
    out = []
    for kind, name, field in ROOTS:
        out.append(pytest.param(kind, name, Mode.POSITIVE, id=f"{name}-valid"))
        if _violatable(field):
            out.append(pytest.param(kind, name, Mode.NEGATIVE, id=f"{name}-wrong-types"))
    return out


@pytest.mark.parametrize(("kind", "field", "mode"), cases())
def test_operations(http, kind, field, mode):
    generate = GENERATORS[kind](SCHEMA, fields=[field], custom_scalars=CUSTOM_SCALARS, mode=mode)

    @FUZZ_SETTINGS
    @given(operation=generate)
    def run(operation):
        status, _ = post(http, operation)
        if mode == Mode.NEGATIVE:
            assert status == 400, f"a {kind} that breaks the schema ran"

    run()


_literal = st.recursive(
    st.one_of(
        st.sampled_from(["null", "true", "NOPE", "DISTANCE_COSINE", "-1", "1.5", "99999999999999999999999"]),
        st.integers(-(2**70), 2**70).map(str),
        st.text(max_size=8).map(json.dumps),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda items: f"[{', '.join(items)}]"),
        st.dictionaries(
            st.sampled_from(["name", "must", "filter", "field", "key", "x", "id"]), inner, max_size=3
        ).map(lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"),
    ),
    max_leaves=8,
)


@st.composite
def literals_of_any_kind(draw) -> str:
    """One root field with arguments given literals of any kind: wrong scalars, lists for
    objects, objects with unknown fields, unknown enum values, nulls, numbers out of range."""
    kind, name, field = draw(st.sampled_from([r for r in ROOTS if r[2].args]))
    chosen = draw(st.lists(st.sampled_from(sorted(field.args)), unique=True, min_size=1, max_size=3))
    args = ", ".join(f"{a}: {draw(_literal)}" for a in chosen)
    return f"{kind} {{ {name}({args}){_leaf_selection(field.type)} }}"


@settings(FUZZ_SETTINGS, max_examples=examples(80))
@given(query=literals_of_any_kind())
def test_arguments_of_any_literal_kind(http, query):
    post(http, query)


_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=6),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def variables_of_any_shape(draw) -> tuple[str, dict]:
    """An operation declaring each argument of one root field as a variable of its own type,
    with variables of any JSON shape (or missing, or nested far too deep)."""
    kind, name, field = draw(st.sampled_from(ROOTS))
    args = list(field.args.items())
    chosen = draw(st.lists(st.sampled_from(args), unique_by=lambda a: a[0], max_size=4)) if args else []
    declared = ", ".join(f"${a}: {t.type}" for a, t in chosen)
    passed = ", ".join(f"{a}: ${a}" for a, _ in chosen)
    selection = _leaf_selection(field.type)
    query = f"{kind}{f'({declared})' if declared else ''} {{ {name}{f'({passed})' if passed else ''}{selection} }}"
    values = {}
    for a, _ in chosen:
        shape = draw(st.sampled_from(["json", "deep", "missing"]))
        if shape == "json":
            values[a] = draw(_json)
        elif shape == "deep":
            depth = draw(st.integers(10, 400))
            values[a] = json.loads("[" * depth + "1" + "]" * depth)
    return query, values


def _leaf_selection(type_: graphql.GraphQLOutputType) -> str:
    named = graphql.get_named_type(type_)
    if not isinstance(named, graphql.GraphQLObjectType):
        return ""
    scalars = [n for n, f in named.fields.items() if graphql.is_leaf_type(graphql.get_named_type(f.type))]
    return f" {{ {scalars[0]} }}" if scalars else " { __typename }"


@settings(FUZZ_SETTINGS, max_examples=examples(60))
@given(case=variables_of_any_shape())
def test_variables_of_any_shape(http, case):
    query, variables = case
    post(http, query, variables)


@settings(FUZZ_SETTINGS, max_examples=examples(30))
@given(levels=st.integers(0, 2 * MAX_DEPTH))
def test_selection_depth_limit(http, levels):
    """`__type.ofType` nests without end: depth 3 + levels, refused past MAX_DEPTH."""
    chain = "ofType { " * levels + "name" + " }" * levels
    status, payload = post(http, f"{{ __schema {{ types {{ {chain} }} }} }}")
    if 3 + levels > MAX_DEPTH:
        assert status == 400 and "levels deep" in payload["errors"][0]["message"]
    else:
        assert status == 200 and "errors" not in payload


@settings(FUZZ_SETTINGS, max_examples=examples(20))
@given(levels=st.integers(0, 2 * MAX_DEPTH))
def test_depth_limit_sees_through_fragments(http, levels):
    fragments = (
        " ".join(f"fragment F{i} on __Type {{ name ofType {{ ...F{i + 1} }} }}" for i in range(levels))
        + f" fragment F{levels} on __Type {{ name }}"
    )
    status, payload = post(http, f"{{ __schema {{ types {{ ...F0 }} }} }} {fragments}")
    if 3 + levels > MAX_DEPTH:
        assert status == 400 and "levels deep" in payload["errors"][0]["message"]
    else:
        assert status == 200 and "errors" not in payload


@settings(FUZZ_SETTINGS, max_examples=examples(20))
@given(levels=st.integers(0, 300))
def test_deeply_nested_input_values(http, levels):
    """A filter nested in the query text: the servicer's limit (8), or the parser's."""
    filter_ = "{must: [{filter: " * levels + "{}" + "}]}" * levels
    status, payload = post(
        http, f'{{ countVectors(collection: "fuzz-small", filter: {filter_}) {{ count }} }}'
    )
    if status == 200 and levels > 8:
        assert payload["errors"][0]["extensions"]["code"] == "INVALID_ARGUMENT"


@settings(FUZZ_SETTINGS, max_examples=examples(15))
@given(n=st.integers(1, 2 * MAX_ROOT_FIELDS))
def test_root_field_fan_out_limit(http, n):
    aliases = " ".join(f"m{i}: listModels {{ models {{ name }} }}" for i in range(n))
    status, payload = post(http, f"{{ {aliases} }}")
    if n > MAX_ROOT_FIELDS:
        assert status == 400 and "root fields" in payload["errors"][0]["message"]
    else:
        assert status == 200 and "errors" not in payload
