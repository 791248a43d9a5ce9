"""Path templates (googleapis http.proto grammar): parsing, matching, decoding, precedence."""

from __future__ import annotations

import re

import pytest

from citadel.adapters.pattern import TemplateError, parse


def test_simple_variable_matches_one_segment():
    t = parse("/v1/collections/{name}")
    assert t.match("/v1/collections/books") == {"name": "books"}
    assert t.match("/v1/collections/a/b") is None
    assert t.match("/v1/collections/") is None


def test_nested_field_path_and_multi_segment_pattern():
    t = parse("/v1/{book.name=shelves/*/books/*}")
    assert t.match("/v1/shelves/s1/books/b2") == {"book.name": "shelves/s1/books/b2"}
    assert t.match("/v1/shelves/s1/books") is None
    assert t.match("/v1/shelves/s1/notes/b2") is None


def test_double_wildcard_takes_the_rest_and_verb_still_applies():
    t = parse("/v1/archive/{name=**}:read")
    assert t.match("/v1/archive/a/b/c:read") == {"name": "a/b/c"}
    assert t.match("/v1/archive/a/b/c") is None


def test_verb_suffix():
    t = parse("/v1/collections/{collection}/vectors:search")
    assert t.verb == "search"
    assert t.match("/v1/collections/c1/vectors:search") == {"collection": "c1"}
    assert t.match("/v1/collections/c1/vectors:scroll") is None


def test_single_segment_decodes_everything_multi_segment_keeps_encoded_slash():
    assert parse("/v1/items/{id}").match("/v1/items/a%2Fb%20c") == {"id": "a/b c"}
    assert parse("/v1/{name=**}").match("/v1/x/a%2Fb%20c") == {"name": "x/a%2Fb c"}


def test_unnamed_wildcards_match_but_bind_nothing():
    t = parse("/v1/shelves/*/books/{name}")
    assert t.match("/v1/shelves/anything/books/b1") == {"name": "b1"}
    assert t.openapi_path() == "/v1/shelves/{_wildcard0}/books/{name}"


def test_specificity_prefers_literals_and_verbs():
    literal = parse("/v1/collections/special")
    variable = parse("/v1/collections/{name}")
    deep = parse("/v1/{name=**}")
    assert sorted([deep, variable, literal], key=lambda t: t.specificity) == [literal, variable, deep]


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("v1/no-slash", "must start with '/'"),
        ("/v1/{name", "unbalanced"),
        ("/v1/{a{b}}", "nested variables"),
        ("/v1/{bad-name}", "bad field path"),
        ("/v1/**/tail", "'**' must be the last segment"),
        ("/v1/{a}/{a}", "bound twice"),
        ("/v1/x{y}", "bad segment"),
    ],
)
def test_bad_templates_are_rejected_with_the_reason(source, problem):
    with pytest.raises(TemplateError, match=re.escape(problem)):
        parse(source)
