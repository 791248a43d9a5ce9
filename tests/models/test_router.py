"""The router in process on the default catalog (the local model): bulk priority, deadlines
(time.monotonic() values), cache identities, and outlier ejection limits. The real-time-or-job
decision is the embedding service's (tests/embeddings/test_service.py)."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from citadel.server.errors import ApiError
from citadel.server.models.backend import Backend
from citadel.server.models.catalog import BackendSpec, Resilience, parse_catalog
from citadel.server.models.health import OutlierDetector
from citadel.server.models.router import ModelRouter


def deadline(seconds: float | None = 30.0) -> float | None:
    return None if seconds is None else time.monotonic() + seconds


def run(coro):
    async def with_router():
        router = ModelRouter(parse_catalog("general", {}))
        try:
            return await coro(router)
        finally:
            await router.close()

    return asyncio.run(with_router())


def test_bulk_priority_serves_bulk_only_models():
    async def scenario(router):
        with pytest.raises(ApiError) as e:
            await router.embed("deepseek", ["a"], False, deadline())
        assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
        name, vectors = await router.embed("deepseek", ["a", "b"], False, deadline(), priority="bulk")
        assert name == "deepseek" and vectors.shape == (2, 384)
        name, vectors = await router.embed("", [], False, deadline(None))
        assert name == "general" and vectors.shape == (0, 384)

    run(scenario)


def test_a_spent_deadline_is_deadline_exceeded():
    async def scenario(router):
        with pytest.raises(ApiError) as e:
            await router.embed("phi3", ["a"], False, deadline(-1))
        assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED and "'phi3'" in e.value.message

    run(scenario)


def test_cache_identity_follows_what_a_name_resolves_to():
    local = ModelRouter(parse_catalog("general", {}))
    assert local.identity("") == local.identity("general") == "general/384/local:all-MiniLM-L6-v2"
    assert local.identity("unknown") == "unknown"
    remote = ModelRouter(
        parse_catalog(
            "general",
            {
                "general": {
                    "backends": [{"provider": "ollama", "url": "http://127.0.0.1:11401", "model": "nomic"}]
                }
            },
        )
    )
    assert remote.identity("general") == "general/?/ollama:nomic"  # dimension learned on first answer
    assert remote.identity("general") != local.identity("general")


def test_outlier_ejection_grows_and_never_ejects_more_than_the_cap():
    r = Resilience(eject_failures=2, eject_base_seconds=1.0, eject_max_seconds=2.5, max_ejected_percent=50)
    peers = [Backend(BackendSpec(id=n, provider="local", url="", model="m"), r, "m") for n in "abc"]
    detector = OutlierDetector(r)
    a, b, c = peers
    a.failed("boom")
    assert not detector.observe_failure(a, peers)  # one failure is not an outlier
    a.failed("boom")
    assert detector.observe_failure(a, peers) and a.ejected()
    assert 0.9 < a.ejected_until - time.monotonic() <= 1.0
    for _ in range(2):
        b.failed("boom")
    assert not detector.observe_failure(b, peers) and not b.ejected()  # 50 % of 3: one at a time
    a.ejected_until = 0  # a's ejection ends; it fails again: ejected longer, up to the cap
    for expected in (2.0, 2.5):
        for _ in range(2):
            a.failed("boom")
        assert detector.observe_failure(a, peers)
        assert expected - 0.1 < a.ejected_until - time.monotonic() <= expected
        a.ejected_until = 0
    alone = [Backend(BackendSpec(id="x", provider="local", url="", model="m"), r, "m")]
    for _ in range(3):
        alone[0].failed("boom")
    assert not detector.observe_failure(alone[0], alone)  # a model's only backend is never ejected
