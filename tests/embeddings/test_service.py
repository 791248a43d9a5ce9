"""The embedding service in process, on real parts: the in-process MemoryCache and a real
redis-server as the cache backend, a model server subprocess (counting the texts it is sent)
or the local model behind the router, and a real SQLite job queue for queued requests."""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import numpy as np
import pytest

from citadel.server import redis_client
from citadel.server.cache import status
from citadel.server.cache.counters import CacheCounters
from citadel.server.cache.memory import MemoryCache
from citadel.server.cache.redis_cache import RedisCache
from citadel.server.embeddings.service import BULK, CacheUse, Embedded, EmbeddingService, Queued
from citadel.server.embeddings.text_cache import TextCache
from citadel.server.errors import ApiError
from citadel.server.jobs.queue_sqlite import SqliteQueue
from citadel.server.jobs.submit import JobSubmitter
from citadel.server.metrics import Metrics
from citadel.server.models.catalog import parse_catalog
from citadel.server.models.router import ModelRouter
from citadel.server.servicers.validation import TextLimits
from tests.support.model_server import ModelServer

EMBED = "/citadel.vector.v1.VectorService/GenerateEmbedding"
USE = CacheUse(EMBED)
LIMITS = TextLimits(texts_per_call=128, chars_per_text=1000)


@pytest.fixture(scope="module")
def model_server(tmp_path_factory):
    server = ModelServer(tmp_path_factory.mktemp("model"), "model", delay_ms=200).start()
    yield server
    server.close()


def remote_router(server: ModelServer, scale: float = 1.0) -> ModelRouter:
    """`general` on the model server (`scale` multiplies what it answers: another model)."""
    backends = [{"provider": "ollama", "url": server.url, "model": f"minilm-x{scale}"}]
    # The dimension given: no health check runs here to learn it before the first call.
    table = {"dimensions": 384, "backends": backends}
    return ModelRouter(parse_catalog("general", {"general": table}, builtin=False))


class Parts:
    """One gateway's worth: router, cache backend, shared counters, text cache, service."""

    def __init__(self, router: ModelRouter, backend, limits: TextLimits = LIMITS, jobs=None) -> None:
        self.metrics = Metrics()
        self.router = router
        self.backend = backend
        self.counters = CacheCounters(self.metrics, backend.name)
        self.service = EmbeddingService(router, limits, jobs, TextCache(backend, self.counters, 60))

    def counts(self, tenant: str = "") -> tuple[int, int, int]:
        methods = {m.path: m for m in self.counters.stats(tenant).methods}
        m = methods.get(EMBED)
        return (m.hits, m.misses, m.coalesced) if m else (0, 0, 0)

    def metric(self, result: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "citadel_cache_lookups_total", {"method": EMBED, "result": result}
        )
        return value or 0.0


@pytest.fixture(params=["memory", "redis"])
def backend(request):
    """A cache backend: in process, or a real redis-server (its client made in the test's loop)."""
    if request.param == "memory":
        return lambda: _ready(MemoryCache(10_000, 1 << 24))
    server = request.getfixturevalue("redis_server")

    async def connect():
        return RedisCache(await redis_client.connect(server.url))

    return connect


async def _ready(value):
    return value


def texts_sent(server: ModelServer) -> int:
    return server.stats()["texts"]


def test_only_unknown_texts_go_to_the_model_and_each_is_counted(model_server, backend):
    async def scenario():
        parts = Parts(remote_router(model_server), await backend())
        a, b, c = (f"{w} {uuid.uuid4().hex}" for w in ("alpha", "beta", "gamma"))
        before = texts_sent(model_server)
        first = await parts.service.embed("", [a, b], tenant="t", cache=USE)
        assert (first.model, first.cache, first.vectors.shape) == ("general", status.MISS, (2, 384))
        assert texts_sent(model_server) - before == 2
        second = await parts.service.embed("general", [a, b, c], tenant="t", cache=USE)
        assert second.cache == status.PARTIAL and texts_sent(model_server) - before == 3  # only c
        np.testing.assert_array_equal(second.vectors[:2], first.vectors)  # float32, exactly
        third = await parts.service.embed("general", [c, a, c], tenant="t", cache=USE)
        assert third.cache == status.HIT and texts_sent(model_server) - before == 3
        np.testing.assert_array_equal(third.vectors[0], third.vectors[2])
        assert parts.counts("t") == (2 + 3, 2 + 1, 0)  # per text: hits, misses
        assert (parts.metric("hit"), parts.metric("miss")) == (5, 3)
        assert first.identity == parts.router.identity("general") == "general/384/ollama:minilm-x1.0"
        await parts.router.close()

    asyncio.run(scenario())


def test_identical_concurrent_misses_make_one_model_call(model_server, backend):
    async def scenario():
        parts = Parts(remote_router(model_server), await backend())
        text = f"asked by everyone at once {uuid.uuid4().hex}"
        before = texts_sent(model_server)
        # The model server answers after 200 ms: all eight calls miss while the first is out.
        answers = await asyncio.gather(
            *(parts.service.embed("", [text], tenant="t", cache=USE) for _ in range(8))
        )
        assert texts_sent(model_server) - before == 1
        assert all(np.array_equal(a.vectors, answers[0].vectors) for a in answers)
        assert parts.counts("t") == (0, 8, 7)
        await parts.router.close()

    asyncio.run(scenario())


def test_tenants_never_share_entries_and_flush_their_own(model_server, backend):
    async def scenario():
        parts = Parts(remote_router(model_server), await backend())
        text = f"one text, two tenants {uuid.uuid4().hex}"
        outcomes = []
        for tenant in ("acme", "globex", "acme", "globex"):
            outcomes.append((await parts.service.embed("", [text], tenant=tenant, cache=USE)).cache)
        assert outcomes == [status.MISS, status.MISS, status.HIT, status.HIT]
        await parts.backend.flush("acme")  # acme's admin flush
        acme = await parts.service.embed("", [text], tenant="acme", cache=USE)
        globex = await parts.service.embed("", [text], tenant="globex", cache=USE)
        assert (acme.cache, globex.cache) == (status.MISS, status.HIT)
        assert parts.counts("acme") == (1, 2, 0) and parts.counts("globex") == (2, 1, 0)
        await parts.router.close()

    asyncio.run(scenario())


def test_a_repointed_model_name_never_serves_the_old_vectors(model_server, redis_server):
    """Two replicas sharing one Redis; `general` is re-pointed at another model on the second."""

    async def scenario():
        old = Parts(remote_router(model_server), RedisCache(await redis_client.connect(redis_server.url)))
        new = Parts(
            remote_router(model_server, scale=2.0),
            RedisCache(await redis_client.connect(redis_server.url)),
        )
        model_server.control(scale=1.0)
        text = f"re-pointed {uuid.uuid4().hex}"
        before = await old.service.embed("general", [text], cache=USE)
        model_server.control(scale=2.0)  # what the model behind the new pointing answers
        try:
            after = await new.service.embed("general", [text], cache=USE)
        finally:
            model_server.control(scale=1.0)
        assert before.identity != after.identity and after.cache == status.MISS
        np.testing.assert_allclose(after.vectors, before.vectors * 2, rtol=1e-5)
        assert (await old.service.embed("general", [text], cache=USE)).cache == status.HIT
        for parts in (old, new):
            await parts.router.close()

    asyncio.run(scenario())


def test_a_redis_outage_serves_uncached_and_is_counted(model_server, redis_server):
    async def scenario():
        parts = Parts(remote_router(model_server), RedisCache(await redis_client.connect(redis_server.url)))
        text = f"through an outage {uuid.uuid4().hex}"
        assert (await parts.service.embed("", [text], cache=USE)).cache == status.MISS
        redis_server.kill()
        answered = await parts.service.embed("", [text], cache=USE)
        assert answered.cache == status.UNAVAILABLE and answered.vectors.shape == (1, 384)
        stats = parts.counters.stats("")
        assert stats.backend == "redis" and stats.backend_errors >= 1
        assert parts.metrics.registry.get_sample_value("citadel_cache_backend_errors_total") >= 1
        await parts.router.close()

    asyncio.run(scenario())


def test_no_cache_bypasses_and_is_counted_as_a_bypass(model_server, backend):
    async def scenario():
        parts = Parts(remote_router(model_server), await backend())
        text = f"never stored {uuid.uuid4().hex}"
        before = texts_sent(model_server)
        bypassed = await parts.service.embed("", [text], cache=CacheUse(EMBED, bypass=True))
        assert bypassed.cache == status.BYPASS and texts_sent(model_server) - before == 1
        assert parts.metric("bypass") == 1 and parts.counts() == (0, 0, 0)
        assert (await parts.service.embed("", [text], cache=USE)).cache == status.MISS  # nothing stored
        uncached = await parts.service.embed("", [text])  # a caller that does not use the cache
        assert uncached.cache == "" and texts_sent(model_server) - before == 3
        assert parts.counts() == (0, 1, 0)
        await parts.router.close()

    asyncio.run(scenario())


def local_service(limits: TextLimits = LIMITS, jobs: JobSubmitter | None = None) -> EmbeddingService:
    return EmbeddingService(ModelRouter(parse_catalog("general", {})), limits, jobs)


def refusal(coro) -> tuple[grpc.StatusCode, str]:
    async def run():
        with pytest.raises(ApiError) as e:
            await coro
        return e.value.code, e.value.message

    return asyncio.run(run())


def test_caps_apply_to_every_caller_in_one_place():
    service = local_service(TextLimits(texts_per_call=2, chars_per_text=10))
    code, message = refusal(service.generate("", ["a", "b", "c"]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith("texts: has 3 texts; limits.embed_texts_per_call is 2")
    _, message = refusal(service.embed("", ["x" * 11], field="query_text"))
    assert message.startswith("query_text: is 11 characters; limits.embed_chars_per_text is 10")
    _, message = refusal(service.embed("", ["ok", " "], priority=BULK))
    assert message == "texts[1]: must not be blank"
    # Batch work comes in chunks of jobs.chunk_size: the per-call count is a real-time bound.
    chunk = asyncio.run(service.embed("deepseek", ["a", "b", "c"], priority=BULK))
    assert chunk.model == "deepseek" and chunk.vectors.shape == (3, 384)
    code, message = refusal(service.generate("no-such-model", ["a"]))
    assert code == grpc.StatusCode.NOT_FOUND and "model: 'no-such-model' is not served" in message


def test_a_deadline_travels_as_a_value():
    service = local_service()
    code, message = refusal(service.embed("phi3", ["a"], deadline=time.monotonic() - 1))
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "'phi3'" in message
    assert asyncio.run(service.embed("phi3", ["a"], deadline=time.monotonic() + 30)).vectors.shape == (1, 384)


def test_hybrid_over_budget_without_a_job_queue_is_a_failed_precondition():
    service = local_service()
    code, message = refusal(service.generate("hermes", ["t"] * 33))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert message.startswith("texts: model 'hermes' queues requests of more than 32 texts")
    assert "batch jobs are not available" in message
    urgent = asyncio.run(service.generate("hermes", ["t"] * 33, urgent=True))
    assert isinstance(urgent, Embedded) and urgent.vectors.shape == (33, 384)
    within = asyncio.run(service.generate("hermes", ["t"] * 32))
    assert isinstance(within, Embedded) and within.vectors.shape == (32, 384)
    assert isinstance(asyncio.run(service.generate("phi3", ["t"] * 100)), Embedded)  # real-time
    code, _ = refusal(service.generate("deepseek", ["t"]))  # bulk-only: never in real time
    assert code == grpc.StatusCode.FAILED_PRECONDITION


def test_hybrid_over_budget_is_queued_as_the_tenants_embed_job(tmp_path):
    async def scenario():
        queue = SqliteQueue(tmp_path / "jobs.sqlite3", lease_seconds=30, max_attempts=3)
        jobs = JobSubmitter(queue, chunk_size=10)
        service = local_service(jobs=jobs)
        texts = [f"text {i}" for i in range(33)]
        queued = await service.generate("hermes", texts, normalize=True, tenant="acme")
        assert isinstance(queued, Queued) and queued.model == "hermes"
        job = await queue.get(queued.job_id)
        assert (job.tenant, job.operation, job.model, job.total, job.normalize) == (
            "acme",
            "embed",
            "hermes",
            33,
            True,
        )
        assert jobs.submitted.is_set()  # this process's workers look at once
        claimed = await queue.claim("worker-1")
        assert [i.id for i in claimed.items.items] == [str(i) for i in range(10)]
        assert [i.text for i in claimed.items.items] == texts[:10]
        await queue.close()

    asyncio.run(scenario())
