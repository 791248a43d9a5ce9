"""The parsed-document cache: bounded by bytes and entries, keeps no huge and no invalid document."""

from __future__ import annotations

import asyncio

from citadel.adapters.descriptions import Descriptions
from citadel.adapters.graphql_app import GraphqlApp, GraphqlLimits, Prepared
from citadel.adapters.graphql_documents import AST_BYTES_PER_CHAR, LARGEST_SHARE, DocumentCache, charge
from citadel.adapters.graphql_schema import build_schema
from citadel.server.chain import Chain
from citadel.server.descriptors import SERVICES, descriptor_set
from citadel.server.methods import method_specs

BUDGET = 1024 * 1024


def test_cache_stays_within_its_bytes_dropping_the_least_recently_used():
    cache: DocumentCache[str] = DocumentCache(BUDGET)
    size = BUDGET // LARGEST_SHARE // AST_BYTES_PER_CHAR  # the largest document kept
    keys = [(f"{i:04d}" + "x" * (size - 4), None) for i in range(3 * LARGEST_SHARE)]
    for key in keys[: LARGEST_SHARE - 1]:
        assert cache.put(key, key[0])
    assert cache.get(keys[0]) == keys[0][0]  # now the most recently used
    for key in keys[LARGEST_SHARE - 1 :]:
        assert cache.put(key, key[0])
        assert cache.bytes <= BUDGET
    assert cache.bytes == sum(charge(k) for k in keys[-len(cache) :])
    assert cache.get(keys[1]) is None and len(cache) == LARGEST_SHARE


def test_a_document_over_an_eighth_of_the_budget_is_not_kept():
    cache: DocumentCache[str] = DocumentCache(BUDGET)
    huge = ("x" * (BUDGET // LARGEST_SHARE // AST_BYTES_PER_CHAR + 1), None)
    assert not cache.put(huge, "doc")
    assert cache.get(huge) is None and cache.bytes == 0


def test_entries_are_bounded_too():
    cache: DocumentCache[int] = DocumentCache(BUDGET, max_entries=4)
    for i in range(10):
        cache.put((f"{{ a{i} }}", None), i)
    assert len(cache) == 4 and cache.get(("{ a9 }", None)) == 9


def graphql_app(cache_bytes: int) -> GraphqlApp:
    specs = method_specs(SERVICES)
    schema = build_schema(specs, Descriptions([descriptor_set()]))
    limits = GraphqlLimits(1 << 20, cache_bytes, 16, 64)
    return GraphqlApp(schema, [], Chain([], {}), "", limits)  # preparing needs only the schema


def test_only_valid_documents_are_cached():
    app = graphql_app(BUDGET)
    valid = "{ listCollections { collections { name } } }"

    async def prepare_all():
        assert isinstance(await app.prepare(valid, None), Prepared)
        for query in ("{ nope }", "{ listCollections { ", "{ listCollections }"):
            assert isinstance(await app.prepare(query, None), list)
        assert isinstance(await app.prepare(f"# {'c' * 20000}\n{valid}", None), Prepared)  # too large

    asyncio.run(prepare_all())
    assert len(app.documents) == 1 and app.documents.get((valid, None)) is not None
