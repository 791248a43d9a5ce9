"""Keys that combine a tenant with other values are unambiguous, and one tenant's cache entries
can be flushed alone: in process and on a real redis-server."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from citadel.server.cache.memory import MemoryCache
from citadel.server.cache.redis_cache import RedisCache
from citadel.server.jobs.queue_redis import RedisQueue
from citadel.server.jobs.record import Job
from citadel.server.redaction import redact_text, redact_url
from citadel.server.tenancy import in_callers_terms, key_parts


def test_colliding_looking_pairs_make_different_keys():
    # Joined with a bare ':' both pairs would read "a:b:c".
    assert key_parts("a:b", "c") != key_parts("a", "b:c")
    assert key_parts("", "x") != key_parts("x", "")
    assert key_parts("é", "x") == "2:é:1:x"  # UTF-8 bytes, as Redis's Lua string.len counts


@pytest.fixture(params=["memory", "redis"])
def run_on_backend(request):
    """Runs `scenario(backend)` on a fresh backend of the parameter's kind (a Redis client is
    made inside the loop that uses it)."""
    url = request.getfixturevalue("redis_server").url if request.param == "redis" else ""

    def run(scenario):
        async def main():
            if not url:
                return await scenario(MemoryCache(1000, 1 << 20))
            client = aioredis.from_url(url)
            try:
                return await scenario(RedisCache(client))
            finally:
                await client.aclose()

        asyncio.run(main())

    return run


def test_tenant_and_scope_pairs_do_not_share_entries(run_on_backend):
    async def scenario(backend):
        first = await backend.lookup("c", ["k"], tenant="a:b")
        second = await backend.lookup("b:c", ["k"], tenant="a")
        assert first[0].key != second[0].key
        await backend.store([(first[0].key, b"one")], 60)
        assert (await backend.lookup("b:c", ["k"], tenant="a"))[0].value is None
        assert (await backend.lookup("c", ["k"], tenant="a:b"))[0].value == b"one"

    run_on_backend(scenario)


def test_a_tenant_flush_leaves_other_tenants_entries(run_on_backend):
    async def scenario(backend):
        for tenant in ("acme", "globex", ""):
            entry = (await backend.lookup("s", ["k"], tenant=tenant))[0]
            await backend.store([(entry.key, tenant.encode() or b"shared")], 60)
        await backend.flush("acme")
        assert (await backend.lookup("s", ["k"], tenant="acme"))[0].value is None
        assert (await backend.lookup("s", ["k"], tenant="globex"))[0].value == b"globex"
        assert (await backend.lookup("s", ["k"], tenant=""))[0].value == b"shared"
        await backend.flush()  # a tenant-less admin's: everyone's
        assert (await backend.lookup("s", ["k"], tenant="globex"))[0].value is None
        assert (await backend.lookup("s", ["k"], tenant=""))[0].value is None

    run_on_backend(scenario)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:hunter2@127.0.0.1:11400", "http://***@127.0.0.1:11400"),
        ("https://TOKEN123@localhost/v1", "https://***@localhost/v1"),
        ("redis://:hunter2@127.0.0.1:6379/0", "redis://***@127.0.0.1:6379/0"),
        ("http://127.0.0.1:6333/?api_key=hunter2&x=1#frag", "http://127.0.0.1:6333/?api_key=***&x=***"),
        ("http://127.0.0.1:11400", "http://127.0.0.1:11400"),
        ("http://u:hunter2@127.0.0.1:port/", "http://***"),
    ],
)
def test_urls_are_shown_without_credentials(url, shown):
    assert redact_url(url) == shown


def test_urls_inside_text_are_redacted():
    text = "ConnectError: 'http://u:hunter2@127.0.0.1:9/api/embed' (see http://a:b@localhost:1?key=z)"
    out = redact_text(text)
    assert "hunter2" not in out and "a:b@" not in out and "key=z" not in out
    assert out.startswith("ConnectError: 'http://***@127.0.0.1:9/api/embed'")


def test_messages_name_collections_as_the_caller_does():
    message = "collection 'acme.films' not found; 'acmex.films' and \"acme.docs\""
    assert in_callers_terms("acme", message) == "collection 'films' not found; 'acmex.films' and \"docs\""
    assert in_callers_terms("", message) == message


def test_idempotency_keys_cannot_cross_tenants_on_redis(redis_server):
    """Joined with a bare ':', tenant 'a:b' with key 'c' and tenant 'a' with key 'b:c' were one
    idempotency entry: the second submit got the first tenant's job back."""

    async def scenario():
        client = aioredis.from_url(redis_server.url)
        queue = RedisQueue(client, lease_seconds=60, max_attempts=3)
        try:
            first, existed = await queue.submit(job("a:b", "c"), [])
            second, second_existed = await queue.submit(job("a", "b:c"), [])
            again, again_existed = await queue.submit(job("a", "b:c"), [])
        finally:
            await queue.close()
            await client.aclose()
        assert not existed and not second_existed and first.id != second.id
        assert again_existed and again.id == second.id  # the same tenant and key: the same job

    asyncio.run(scenario())


def job(tenant: str, idempotency_key: str) -> Job:
    return Job(
        id=uuid.uuid4().hex,
        tenant=tenant,
        collection="c",
        visible_collection="c",
        model="general",
        operation="bulk_upsert",
        total=0,
        idempotency_key=idempotency_key,
    )
