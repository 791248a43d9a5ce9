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
        ("/", "bad segment ''"),
        ("/v1//x", "bad segment ''"),
        ("/v1/x/", "bad segment ''"),
        ("/v1/x:", "':' must be followed by a verb"),  # not silently "/v1/x"
        ("/v1/{name=}", "bad segment ''"),  # not silently "{name=*}"
        ("/v1/x:a:b", "bad segment 'x:a'"),
        ("/v1/{a}:b/c", "a variable must be a whole segment"),
        ("/v1/{name=**}/x", "'**' must be the last segment"),
        ("/v1/{name=a/**/b}", "'**' must be the last segment"),
        ("/v1/{ a }", "bad field path ' a '"),
        ("/v1/{a.}", "bad field path 'a.'"),
        ("/v1/{1a}", "bad field path '1a'"),
        ("/v1/{}", "bad field path ''"),
        ("/v1/a}", "unbalanced '}'"),
        ("/v1/{a=b=c}", "bad segment 'b=c'"),
        ("/v1/{a=*x}", "bad segment '*x'"),
        ("/v1/{a}/{b}/{a}", "bound twice"),
    ],
)
def test_bad_templates_are_rejected_with_the_reason(source, problem):
    with pytest.raises(TemplateError, match=re.escape(problem)):
        parse(source)


@pytest.mark.parametrize(
    ("source", "path", "values"),
    [
        ("/v1/{id}", "/v1/a:b", {"id": "a:b"}),  # a colon inside a segment, without a verb
        ("/v1/{id}", "/v1/%3A%2F%25", {"id": ":/%"}),
        ("/v1/{id}", "/v1/caf%C3%A9", {"id": "caf\u00e9"}),
        ("/v1/{id}:get", "/v1/a:get", {"id": "a"}),
        ("/v1/{id}:get", "/v1/a:b:get", {"id": "a:b"}),  # only the last colon is the verb
        ("/v1/{id}:get", "/v1/a%3Aget", None),  # an encoded colon is not a verb separator
        ("/v1/{id}:get", "/v1/a:GET", None),  # verbs are case-sensitive
        ("/v1/{id}", "/v1/a:get", {"id": "a:get"}),  # without a verb in the template it is data
        ("/v1/{a.b.c}", "/v1/x", {"a.b.c": "x"}),
        ("/v1/{a=b/**}", "/v1/b/c/d", {"a": "b/c/d"}),
        ("/v1/{a=b/**}", "/v1/c/d", None),
        ("/v1/{a=*}/{b=**}", "/v1/x/y/z", {"a": "x", "b": "y/z"}),
        ("/v1/{a=*}/{b=**}", "/v1/x", None),
        ("/v1/{name=**}", "/v1/a", {"name": "a"}),
        ("/v1/{name=**}", "/v1/", None),
        ("/v1/*/x", "/v1/anything/x", {}),
        ("/v1/**", "/v1/a/b", {}),
        ("/v1/a.b/{c}", "/v1/a.b/d", {"c": "d"}),  # a dot in a literal is not a regex wildcard
        ("/v1/a.b/{c}", "/v1/aXb/d", None),
        ("/v1/a+b", "/v1/a+b", {}),  # nor is a plus
        ("/v1/a+b", "/v1/aab", None),
        ("/V1/{id}", "/v1/x", None),  # literals are case-sensitive
        ("/v1/{id}", "/v1/x?y=1", {"id": "x?y=1"}),  # the caller strips the query before matching
    ],
)
def test_match_table(source, path, values):
    assert parse(source).match(path) == values


@pytest.mark.parametrize(
    ("source", "openapi"),
    [
        ("/v1/collections/{name}", "/v1/collections/{name}"),
        ("/v1/collections/{collection}/vectors:search", "/v1/collections/{collection}/vectors:search"),
        ("/v1/{book.name=shelves/*/books/*}", "/v1/{book.name}"),
        ("/v1/archive/{name=**}:read", "/v1/archive/{name}:read"),
        ("/v1/*/x/**", "/v1/{_wildcard0}/x/{_wildcard1}"),
    ],
)
def test_openapi_path(source, openapi):
    assert parse(source).openapi_path() == openapi


@pytest.mark.parametrize(
    ("source", "variables"),
    [
        ("/v1/x", ()),
        ("/v1/{a}", (("a", ("*",), False),)),
        ("/v1/{a=**}", (("a", ("**",), True),)),
        ("/v1/{a=x/*}/{b}", (("a", ("x", "*"), True), ("b", ("*",), False))),
    ],
)
def test_variables(source, variables):
    found = parse(source).variables
    assert tuple((v.field_path, v.segments, v.multi_segment) for v in found) == variables


@pytest.mark.parametrize(
    ("more", "less"),
    [
        ("/v1/a/b", "/v1/a/{x}"),  # more literals first
        ("/v1/{x=a/*}", "/v1/{x=*/*}"),  # literals inside a variable count too
        ("/v1/{x}:run", "/v1/{x}"),  # then a verb
        ("/v1/a/{x}", "/v1/a/{x=**}"),  # then no `**`
    ],
)
def test_specificity_orders_pairs(more, less):
    assert parse(more).specificity < parse(less).specificity
