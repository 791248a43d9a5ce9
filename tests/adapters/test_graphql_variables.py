"""The compiled variable coercion (issue 20's GraphQL fast path) returns exactly what
graphql-core's own coercion returns, values and errors alike, and takes the fast path where it
should: on valid vectors, scalars and enums.

Both run on the gateway's real schema, on one document declaring every variable shape the
compiler handles (and an input object it leaves to graphql-core), over valid and invalid
inputs. Over HTTP, the echo gateway's answers to variables equal its answers to the same
values written inline, and bad vectors are refused with graphql-core's words, the first time
(document parsed) and the second (document cached, compiled coercion).
"""

from __future__ import annotations

import math

import pytest
from graphql import GraphQLError, parse
from graphql.execution.values import get_variable_values

from citadel.adapters.descriptions import Descriptions
from citadel.adapters.graphql_app import MAX_ERRORS
from citadel.adapters.graphql_schema import build_schema
from citadel.adapters.graphql_variables import GiveUp, VariableCoercion, _float_list
from citadel.server.descriptors import SERVICES, descriptor_set
from citadel.server.methods import method_specs

SCALARS_AND_LISTS = """
query Search($collection: String, $queryVector: [Float!], $vector: [Float!]!, $limit: UInt32 = 5,
             $offset: UInt32, $name: String!, $texts: [String!], $maybe: [Float]) {
  searchVectors(collection: $collection, queryVector: $queryVector, limit: $limit) { queryTimeMs }
  other: searchVectors(collection: $name, queryVector: $vector, offset: $offset) { queryTimeMs }
  generateEmbedding(texts: $texts, model: $name) { model }
  third: searchVectors(collection: $name, queryVector: $maybe) { queryTimeMs }
}
"""
WITH_INPUT_OBJECT = """
query Filtered($queryVector: [Float!], $filter: FilterInput) {
  searchVectors(collection: "c", queryVector: $queryVector, filter: $filter) { queryTimeMs }
}
"""
BASE = {"vector": [0.5], "name": "n"}
VALID = {
    "floats": {"queryVector": [0.1, -2.5, 3e-9]},
    "ints-become-floats": {"queryVector": [1, 0, -3]},
    "mixed": {"queryVector": [1, 0.5]},
    "empty": {"queryVector": []},
    "null-list": {"queryVector": None},
    "scalars": {"collection": "c", "limit": 7, "offset": 0, "texts": ["a", "b"]},
    "limit-as-digits": {"limit": "12"},
    "default-limit": {},
    "explicit-null-limit": {"limit": None},
    "unknown-variable-ignored": {"nope": 1},
    "nullable-items": {"maybe": [1.5, None]},
    "finite-but-sums-to-inf": {"queryVector": [1e308, 1e308]},
    "single-float-is-wrapped": {"queryVector": 0.5},
}
INVALID = {
    "string-item": {"queryVector": [0.1, "x"]},
    "bool-item": {"queryVector": [True, 0.5]},
    "null-item": {"queryVector": [0.5, None]},
    "nan": {"queryVector": [math.nan]},
    "inf": {"queryVector": [0.5, -math.inf]},
    "huge-int": {"queryVector": [10**400]},
    "object": {"queryVector": {"a": 1}},
    "non-null-list-null": {"vector": None},
    "non-null-list-missing": {"vector": ...},
    "required-string-missing": {"name": ...},
    "uint32-negative": {"limit": -1},
    "uint32-too-big": {"limit": 2**32},
    "uint32-bool": {"offset": True},
    "string-given-int": {"collection": 7},
    "several-at-once": {"queryVector": ["a", "b"], "limit": -1, "collection": 3},
}


def coercion(document: str) -> tuple[VariableCoercion, object]:
    schema = build_schema(method_specs(SERVICES), Descriptions([descriptor_set()])).graphql_schema
    operation = parse(document).definitions[0]
    return VariableCoercion.compile(schema, operation), operation


@pytest.fixture(scope="module")
def scalars_and_lists():
    return coercion(SCALARS_AND_LISTS)


def inputs_of(case: dict) -> dict:
    merged = {**BASE, **case}
    return {k: v for k, v in merged.items() if v is not ...}


def graphql_core(compiled: VariableCoercion, operation, inputs: dict):
    return get_variable_values(compiled.schema, operation.variable_definitions, inputs, max_errors=MAX_ERRORS)


def same(ours, theirs) -> None:
    if isinstance(theirs, list):
        assert isinstance(ours, list)
        assert [e.formatted for e in ours] == [e.formatted for e in theirs]
        assert all(isinstance(e, GraphQLError) for e in ours)
    else:
        assert repr(ours) == repr(theirs)  # repr: 1.0 and 1 differ, as they do in the reply


@pytest.mark.parametrize("case", list(VALID.values()), ids=list(VALID))
def test_valid_values_coerce_as_graphql_core_does(scalars_and_lists, case):
    compiled, operation = scalars_and_lists
    inputs = inputs_of(case)
    same(compiled.coerce(inputs, MAX_ERRORS), graphql_core(compiled, operation, inputs))


@pytest.mark.parametrize("case", list(INVALID.values()), ids=list(INVALID))
def test_invalid_values_get_graphql_cores_errors_word_for_word(scalars_and_lists, case):
    compiled, operation = scalars_and_lists
    inputs = inputs_of(case)
    theirs = graphql_core(compiled, operation, inputs)
    assert isinstance(theirs, list) and theirs, "each case is one graphql-core refuses"
    same(compiled.coerce(inputs, MAX_ERRORS), theirs)


def test_valid_vectors_and_scalars_take_the_compiled_path(scalars_and_lists):
    compiled, _ = scalars_and_lists
    assert compiled.compiled is not None
    assert {v.name: v.coerce for v in compiled.compiled}["queryVector"] is _float_list  # checked in bulk
    fast = [
        "floats",
        "ints-become-floats",
        "mixed",
        "empty",
        "null-list",
        "scalars",
        "limit-as-digits",
        "default-limit",
        "nullable-items",
    ]
    for name in fast:
        compiled._compiled(inputs_of(VALID[name]))  # raises GiveUp if it left it to graphql-core
    for name in ("string-item", "nan", "huge-int", "non-null-list-null", "uint32-negative"):
        with pytest.raises(GiveUp):
            compiled._compiled(inputs_of(INVALID[name]))


def test_a_document_with_an_input_object_variable_is_left_to_graphql_core():
    compiled, operation = coercion(WITH_INPUT_OBJECT)
    assert compiled.compiled is None
    good = {"queryVector": [1, 0], "filter": {"must": [{"field": {"key": "year", "range": {"lt": 1900}}}]}}
    bad = {"queryVector": [1, 0], "filter": {"must": [{"nope": 1}]}}
    for inputs in (good, bad):
        same(compiled.coerce(inputs, MAX_ERRORS), graphql_core(compiled, operation, inputs))


ECHO_LISTS = (
    "mutation($e: [Float!], $t: [String!], $c: [Color!], $u: UInt32, $n: [Int64!]) "
    "{ echo(embedding: $e, tags: $t, colors: $c, unsignedSmall: $u, numbers: $n) "
    "{ request { embedding tags colors unsignedSmall numbers } } }"
)


def test_variables_answer_as_the_same_values_written_inline(http):
    variables = {
        "e": [0.25, 1, -3.5],
        "t": ["a", "b"],
        "c": ["COLOR_BLUE", "COLOR_GREEN"],
        "u": 7,
        "n": ["1", 2],
    }
    inline = (
        'mutation { echo(embedding: [0.25, 1, -3.5], tags: ["a", "b"], colors: [COLOR_BLUE, COLOR_GREEN], '
        'unsignedSmall: 7, numbers: ["1", 2]) { request { embedding tags colors unsignedSmall numbers } } }'
    )
    expected = http.post("/graphql", json={"query": inline}).json()
    assert "errors" not in expected, expected
    for _ in range(2):  # parsed, then from the document cache
        got = http.post("/graphql", json={"query": ECHO_LISTS, "variables": variables})
        assert got.status_code == 200 and got.json() == expected


@pytest.mark.parametrize(
    ("vector", "problem"),
    [
        (
            [0.5, "x"],
            "Variable '$e' got invalid value 'x' at 'e[1]'; Float cannot represent non numeric value: 'x'",
        ),
        (
            [True],
            "Variable '$e' got invalid value True at 'e[0]'; Float cannot represent non numeric value: True",
        ),
        ([0.5, None], "Variable '$e' got invalid value None at 'e[1]'; Expected non-nullable type 'Float!'"),
    ],
    ids=["string", "bool", "null"],
)
def test_bad_vectors_are_400_with_graphql_cores_words_cached_or_not(http, vector, problem):
    answers = []
    for _ in range(2):  # parsed, then from the document cache
        response = http.post("/graphql", json={"query": ECHO_LISTS, "variables": {"e": vector}})
        assert response.status_code == 400, response.text
        answers.append(response.json())
    assert answers[0] == answers[1]
    assert any(problem in e["message"] for e in answers[0]["errors"]), answers[0]
    assert all(e["extensions"]["code"] == "INVALID_ARGUMENT" for e in answers[0]["errors"])
