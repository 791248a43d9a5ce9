"""The Qdrant-server store when Qdrant is not there (issue 22, items 2-4). No Qdrant server runs
here and none is faked: the store is pointed at a loopback port that refuses connections, at a
bare listener that holds connections and is SIGKILLed mid-call, and at one answering 503 to
everything (a proxy with no Qdrant behind it), over gRPC and REST. Every failure is UNAVAILABLE
naming Qdrant (URL redacted), retried within the caller's deadline, never INTERNAL. What Qdrant
would answer (404, 409, 400, gRPC codes, local mode's ValueError) is mapped by one table, and
the race-safe create runs on qdrant-client's local mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import threading
import time
from functools import partial
from pathlib import Path

import grpc
import httpx
import pytest
from qdrant_client import AsyncQdrantClient
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from citadel.batch.v1 import batch_service_pb2 as bpb
from citadel.server import deadlines
from citadel.server.config import ConfigError, Settings
from citadel.server.embeddings.service import EmbeddingService
from citadel.server.errors import ApiError
from citadel.server.jobs.queue_sqlite import SqliteQueue
from citadel.server.jobs.record import Job
from citadel.server.jobs.worker import WorkerPool
from citadel.server.metrics import Metrics
from citadel.server.models.catalog import parse_catalog
from citadel.server.models.router import ModelRouter
from citadel.server.servicers.validation import TextLimits
from citadel.server.store.base import CollectionSpec, Point, SearchQuery
from citadel.server.store.qdrant import QdrantStore
from citadel.server.store.qdrant_calls import QdrantCalls, Transient
from citadel.server.store.qdrant_options import QdrantOptions
from tests.store.races import one_create_wins
from tests.support.redis_server import free_port
from tests.support.tcp_listener import Listener

pytestmark = pytest.mark.asyncio

SECRET = "s3cret-pass"
TRANSPORTS = {"grpc": True, "rest": False}
DEADLINE = 2.0


def remote(port: int, grpc_: bool, **options) -> QdrantStore:
    """The store as the gateway opens it, REST and gRPC both aimed at `port`."""
    url = f"http://citadel:{SECRET}@127.0.0.1:{port}"
    return QdrantStore.remote(url, None, QdrantOptions(prefer_grpc=grpc_, grpc_port=port, **options))


@contextlib.contextmanager
def deadline_in(seconds: float):
    """What the errors interceptor records for a call with this deadline."""
    token = deadlines.CURRENT.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        deadlines.CURRENT.reset(token)


async def unavailable(coro, within: float) -> tuple[ApiError, float]:
    start = time.monotonic()
    with pytest.raises(ApiError) as e:
        await coro
    took = time.monotonic() - start
    assert e.value.code == grpc.StatusCode.UNAVAILABLE, e.value
    assert e.value.message.startswith("Qdrant at http://***@127.0.0.1:"), e.value.message
    assert SECRET not in e.value.message
    assert took < within, f"answered after {took:.2f} s, past {within} s"
    return e.value, took


def every_operation(store: QdrantStore) -> dict:
    point = Point(id="a", vector=[1.0, 0.0, 0.0], metadata={"k": "v"})
    return {
        "create": lambda: store.create_collection(
            CollectionSpec("c", 3, "cosine", indexed_fields=(("k", "keyword"),))
        ),
        "get": lambda: store.get_collection("c"),
        "list": lambda: store.list_collections(),
        "delete collection": lambda: store.delete_collection("c"),
        "switch": lambda: store.switch("c", "c~1"),
        "upsert": lambda: store.upsert("c", [point]),
        "retrieve": lambda: store.retrieve("c", ["a"]),
        "delete ids": lambda: store.delete_ids("c", ["a"]),
        "search": lambda: store.search("c", SearchQuery(vector=[1.0, 0.0, 0.0], limit=3)),
        "scroll": lambda: store.scroll("c", None, 10, "", False, False),
        "count": lambda: store.count("c", None),
    }


# -- a port that refuses ------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_refusing_port_is_unavailable_for_every_operation_within_the_deadline(transport):
    store = remote(free_port(), TRANSPORTS[transport])
    try:
        with deadline_in(DEADLINE):
            error, took = await unavailable(
                store.search("c", SearchQuery(vector=[1.0, 0, 0], limit=1)), DEADLINE
            )
        # Retried with jitter until little of the deadline was left, not given up at once.
        assert "attempts); retry later" in error.message and took > DEADLINE / 2, (error.message, took)

        async def one(call):
            with deadline_in(1.0):
                return await unavailable(call(), 1.0)

        operations = every_operation(store)
        answers = await asyncio.gather(*(one(call) for call in operations.values()))
        for name, (error, _) in zip(operations, answers, strict=True):
            assert "is unavailable" in error.message, (name, error.message)
        # The probe behind start-up and the dependency watcher is one attempt, at once.
        _, took = await unavailable(store.check_reachable(), 1.0)
    finally:
        await store.close()


async def test_without_a_deadline_retries_stop_after_the_qdrant_timeout():
    store = remote(free_port(), True, timeout_seconds=0.5)
    try:
        error, took = await unavailable(store.count("c", None), 2.0)
        assert "attempts" in error.message
    finally:
        await store.close()


# -- a listener killed mid-call -----------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_listener_killed_mid_call_is_unavailable_within_the_deadline(transport, tmp_path):
    with Listener("hold", tmp_path) as listener:
        store = remote(listener.port, TRANSPORTS[transport])
        try:
            threading.Timer(1.0, listener.kill).start()  # while the search waits for its answer
            with deadline_in(4.0):
                error, took = await unavailable(
                    store.search("c", SearchQuery(vector=[1.0, 0, 0], limit=1)), 4.0
                )
            assert took > 1.0  # it waited on the listener, then failed over to refusals
            assert "attempts); retry later" in error.message, error.message
        finally:
            await store.close()


async def test_what_a_create_sends_carries_the_configured_layout(tmp_path):
    """The REST body reaching the port (nobody answers it) holds the cluster settings."""
    options = dict(
        shard_number=6,
        replication_factor=2,
        write_consistency_factor=2,
        hnsw_m=32,
        hnsw_ef_construct=200,
        quantization="int8",
        on_disk_vectors=True,
        timeout_seconds=0.5,
    )
    with Listener("hold", tmp_path) as listener:
        store = remote(listener.port, False, **options)
        client = store._client
        try:
            # The create itself (its name check needs an answer nobody gives), as the store sends it.
            make = partial(
                client.create_collection,
                "c~0",
                vectors_config=store._options.vector_params(3, "Cosine"),
                **store._options.collection_kwargs(),
            )
            await unavailable(store._calls.run(make, "c"), 2.0)
        finally:
            await store.close()
        sent = listener.received()
    body = json.loads(sent[sent.index(b"\r\n\r\n") + 4 :])
    assert body["shard_number"] == 6 and body["replication_factor"] == 2
    assert body["write_consistency_factor"] == 2
    assert body["hnsw_config"] == {"m": 32, "ef_construct": 200}
    assert body["quantization_config"]["scalar"]["type"] == "int8"
    assert body["vectors"] == {"size": 3, "distance": "Cosine", "on_disk": True}


# -- 5xx, and what is retried -------------------------------------------------------------


async def test_5xx_is_unavailable_and_only_idempotent_calls_are_retried(tmp_path):
    with Listener("http503", tmp_path) as listener:
        store = remote(listener.port, False)
        list_collections = store._client.get_collections
        try:
            with deadline_in(1.5):
                error, _ = await unavailable(store._calls.run(list_collections, "c", idempotent=False), 1.5)
            assert listener.requests() == 1 and "HTTP 503" in error.message
            with deadline_in(1.5):
                await unavailable(store._calls.run(list_collections, "c", idempotent=True), 1.5)
            assert listener.requests() > 3, listener.requests()
            with deadline_in(1.5):  # and through the store's own methods
                await unavailable(store.count("c", None), 1.5)
        finally:
            await store.close()


# -- what Qdrant's answers mean ------------------------------------------------------------


def _http(status: int, error: str = "") -> UnexpectedResponse:
    content = json.dumps({"status": {"error": error}}).encode()
    return UnexpectedResponse(status, "", content, httpx.Headers())


def _grpc(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


ANSWERS = [
    (
        _http(404, "Not found: Collection `c` doesn't exist!"),
        grpc.StatusCode.NOT_FOUND,
        "collection 'c' not found",
    ),
    (
        _http(409, "Collection `c~0` already exists!"),
        grpc.StatusCode.ALREADY_EXISTS,
        "collection 'c' already exists",
    ),
    (_http(400, "Wrong input: Vector dimension error"), grpc.StatusCode.INVALID_ARGUMENT, "Vector dimension"),
    (_http(403), grpc.StatusCode.UNAVAILABLE, "store.qdrant_api_key"),
    (_http(503), "transient", "HTTP 503"),
    (_http(500, "Service internal error"), "transient", "Service internal error"),
    (_http(429), "transient", "HTTP 429"),
    (
        _grpc(grpc.StatusCode.NOT_FOUND, "Collection `c` doesn't exist"),
        grpc.StatusCode.NOT_FOUND,
        "not found",
    ),
    (_grpc(grpc.StatusCode.ALREADY_EXISTS), grpc.StatusCode.ALREADY_EXISTS, "already exists"),
    (_grpc(grpc.StatusCode.INVALID_ARGUMENT, "bad filter"), grpc.StatusCode.INVALID_ARGUMENT, "bad filter"),
    (_grpc(grpc.StatusCode.UNAUTHENTICATED), grpc.StatusCode.UNAVAILABLE, "store.qdrant_api_key"),
    (_grpc(grpc.StatusCode.UNAVAILABLE, "connection reset"), "transient", "connection reset"),
    (_grpc(grpc.StatusCode.DEADLINE_EXCEEDED), "transient", "DEADLINE_EXCEEDED"),
    (_grpc(grpc.StatusCode.INTERNAL), "transient", "INTERNAL"),
    (ResponseHandlingException(httpx.ConnectError("refused")), "transient", "refused"),
    (ResponseHandlingException(httpx.ReadTimeout("slow")), "transient", "slow"),
    (TimeoutError(), "transient", "no answer in time"),
    # Qdrant's own words, however long, are cut to a few hundred characters, secrets redacted.
    (
        ResourceExhaustedResponse("rate limited at http://admin:s3cret@127.0.0.1:6333 " + "x" * 5000, 2),
        "transient",
        "it is overloaded: rate limited at http://***@127.0.0.1:6333 xxx",
    ),
    (ValueError("Collection c not found"), grpc.StatusCode.NOT_FOUND, "collection 'c' not found"),
    (ValueError("Collection c~0 already exists"), grpc.StatusCode.ALREADY_EXISTS, "already exists"),
]


@pytest.mark.parametrize(
    ("error", "meaning", "says"), ANSWERS, ids=[f"{type(a[0]).__name__}-{i}" for i, a in enumerate(ANSWERS)]
)
async def test_qdrants_answers_as_statuses(error, meaning, says):
    calls = QdrantCalls("Qdrant at http://127.0.0.1:6333", 10.0, remote=True)
    status = calls.status(error, "c")
    if meaning == "transient":
        assert isinstance(status, Transient) and status.error.code == grpc.StatusCode.UNAVAILABLE
        assert status.error.message.startswith("Qdrant at http://127.0.0.1:6333 is unavailable")
        status = status.error
    else:
        assert isinstance(status, ApiError) and status.code == meaning
    assert says in status.message, status.message
    assert len(status.message) < 500 and "s3cret" not in status.message


# -- create is race-safe (local mode) -----------------------------------------------------


async def test_a_create_racing_another_replicas_is_already_exists_and_an_abandoned_one_is_taken_over(
    tmp_path,
):
    store = QdrantStore.local(tmp_path / "qdrant")
    try:
        # Another replica has made generation 0 and not yet the name's entry: the name is taken.
        await store.create_collection(CollectionSpec("docs~0", 3, "cosine", created_at=time.time()))
        with pytest.raises(ApiError) as e:
            await store.create_collection(CollectionSpec("docs", 3, "cosine", created_at=time.time()))
        assert e.value.code == grpc.StatusCode.ALREADY_EXISTS and "'docs'" in e.value.message
        # A generation 0 left long ago by a create that died midway (its registry entry an
        # hour old, no entry for the name) is dropped and made anew.
        await store.create_collection(CollectionSpec("old~0", 3, "cosine"))
        await store.upsert("old~0", [Point(id="stale", vector=[1.0, 0, 0], metadata={})])
        left = await store._registry.get("old~0")
        await store._registry.mark_deleting(["old~0"])
        await store._registry.remove(["old~0"])
        assert await store._registry.insert(dataclasses.replace(left, made_at=time.time() - 3600))
        await store.create_collection(CollectionSpec("old", 4, "dot", created_at=time.time()))
        info = await store.get_collection("old")
        assert (info.spec.dimension, info.vector_count, info.spec.home) == (4, 0, "old~0")
        # Two creates of one name at once: one wins, the other is ALREADY_EXISTS, never INTERNAL.
        await one_create_wins(
            *(store.create_collection(CollectionSpec("twice", 3, "cosine")) for _ in range(2))
        )
    finally:
        await store.close()


async def test_every_layout_setting_is_accepted_by_local_mode_and_searches_still_answer(tmp_path):
    options = QdrantOptions(replication_factor=2, read_consistency="majority", quantization="int8", hnsw_m=8)
    store = QdrantStore(AsyncQdrantClient(path=str(tmp_path / "qdrant")), options)
    try:
        await store.create_collection(CollectionSpec("c", 3, "cosine"))
        await store.upsert("c", [Point(id="a", vector=[1.0, 0, 0], metadata={})])
        assert [h.point.id for h in await store.search("c", SearchQuery(vector=[1.0, 0, 0], limit=1))] == [
            "a"
        ]
        assert [p.id for p in await store.retrieve("c", ["a"])] == ["a"]
        assert (await store.scroll("c", None, 5, "", False, False)).points[0].id == "a"
    finally:
        await store.close()


# -- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"CITADEL_QDRANT_READ_CONSISTENCY": "most"}, "store.qdrant_read_consistency"),
        ({"CITADEL_QDRANT_QUANTIZATION": "pq"}, "store.qdrant_quantization"),
        ({"CITADEL_QDRANT_POOL_SIZE": "0"}, "store.qdrant_pool_size"),
        ({"CITADEL_QDRANT_TIMEOUT_SECONDS": "0"}, "store.qdrant_timeout_seconds"),
        (
            {"CITADEL_QDRANT_WRITE_CONSISTENCY_FACTOR": "3", "CITADEL_QDRANT_REPLICATION_FACTOR": "2"},
            "write_consistency",
        ),
    ],
)
async def test_a_wrong_qdrant_setting_stops_loading_naming_it(env, says):
    with pytest.raises(ConfigError) as e:
        Settings.from_env(env)
    assert says in str(e.value)


# -- batch workers --------------------------------------------------------------------------


async def test_a_batch_chunk_meeting_an_unreachable_qdrant_is_retried_soon_not_after_its_lease(tmp_path):
    lease = 60.0
    queue = SqliteQueue(tmp_path / "jobs.sqlite3", lease_seconds=lease, max_attempts=3)
    store = remote(free_port(), True, timeout_seconds=0.3)
    embeddings = EmbeddingService(ModelRouter(parse_catalog("general", {})), TextLimits(128, 1000), None)
    job = Job(
        id="j", tenant="", collection="c", visible_collection="c", model="", operation="bulk_upsert", total=2
    )
    items = [bpb.BatchItem(id=f"v{i}", embedding=[1.0, float(i), 0.0]) for i in range(2)]
    await queue.submit(job, [bpb.BatchItemList(items=items)])
    pool = WorkerPool(queue, store, embeddings, 1, lease, Metrics())
    start = time.monotonic()
    pool.start()
    try:
        while (current := await queue.get("j")).state not in ("failed", "succeeded"):
            assert time.monotonic() - start < lease / 3, "the chunk waited for its lease"
            await asyncio.sleep(0.1)
    finally:
        await pool.stop(1.0)
        await queue.close()
        await store.close()
    # Three attempts, each given back at once with a short backoff, then dead-lettered.
    assert (current.state, current.failed) == ("failed", 2)
    assert {f.attempts for f in current.errors} == {3}
    assert all(
        "Qdrant at http://***@127.0.0.1:" in f.message and SECRET not in f.message for f in current.errors
    )


async def test_the_readmes_reference_deployment_loads(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"```toml\n(\[store\]\nqdrant_url.*?)```", readme, re.S)
    assert block, "README lost its reference deployment"
    (tmp_path / "citadel.toml").write_text(block.group(1))
    settings = Settings.load(tmp_path / "citadel.toml", env={})
    options = QdrantOptions.from_settings(settings)
    assert (options.replication_factor, options.quantization, settings.redis_cluster) == (2, "int8", True)
    assert options.collection_kwargs()["replication_factor"] == 2
