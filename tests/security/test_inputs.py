"""Input that must be refused, not crash (issue 14, items 4-7 and 9), against the `secured`
gateway: each request over every protocol it applies to, its status and a message naming the
field, item, key or limit, and nothing written for a request that is invalid in part. Batch
jobs are the exception by design: their good items are written and the bad one is listed in
`errors`, tried once."""

from __future__ import annotations

import json
import threading
import time
import uuid

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2
from websockets.sync.client import connect

from citadel.batch.v1 import batch_service_pb2 as batch
from citadel.batch.v1 import batch_service_pb2_grpc
from citadel.vector.v1 import filter_pb2, resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.security.conftest import Secured, start_secured
from tests.security.protocol_calls import PROTOCOLS, call

TEXTS_PER_CALL = 128  # the defaults of limits.embed_texts_per_call / embed_chars_per_text
CHARS_PER_TEXT = 32_768
DIM = 4


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _collection(gateway: Secured, dimension: int = DIM) -> str:
    name = _name("inputs")
    created = call(
        gateway,
        "grpc",
        "CreateCollection",
        pb.CreateCollectionRequest(
            collection=resources_pb2.Collection(
                name=name, dimension=dimension, distance=resources_pb2.DISTANCE_COSINE
            )
        ),
        gateway.creds.keys["admin"],
    )
    assert created.code == grpc.StatusCode.OK, created.message
    return name


def _count(gateway: Secured, name: str) -> int:
    counted = call(gateway, "grpc", "CountVectors", pb.CountVectorsRequest(collection=name), _key(gateway))
    assert counted.code == grpc.StatusCode.OK, counted.message
    return counted.response.count


def _key(gateway: Secured, who: str = "writer") -> str:
    return gateway.creds.keys[who]


def _struct(value: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(value)
    return s


def _rest(gateway: Secured, path: str, body: bytes | dict, who: str = "writer") -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        f"{gateway.proc.http_url}{path}",
        content=content,
        headers={**gateway.headers(who), "content-type": "application/json"},
        timeout=60,
    )


def _graphql(gateway: Secured, document: str, variables: dict | None = None, who: str = "writer") -> dict:
    response = httpx.post(
        f"{gateway.proc.http_url}/graphql",
        json={"query": document, "variables": variables or {}},
        headers=gateway.headers(who),
        timeout=60,
    )
    assert response.status_code < 500, response.text
    return response.json()


def _graphql_error(payload: dict) -> tuple[str, str]:
    assert payload.get("errors"), payload
    error = payload["errors"][0]
    return (error.get("extensions") or {}).get("code", ""), error["message"]


def _over_websocket(gateway: Secured, document: str, variables: dict, who: str) -> tuple[str, str]:
    """The first error of one operation over graphql-transport-ws: (code, message)."""
    url = f"ws://127.0.0.1:{gateway.proc.http_port}/graphql"
    with connect(url, subprotocols=["graphql-transport-ws"], additional_headers=gateway.headers(who)) as ws:
        ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "connection_ack"}
        ws.send(
            json.dumps(
                {"id": "1", "type": "subscribe", "payload": {"query": document, "variables": variables}}
            )
        )
        message = json.loads(ws.recv(timeout=60))
    assert message["type"] == "next" and message["payload"].get("errors"), message
    return _graphql_error(message["payload"])


def _log_since(gateway: Secured, offset: int) -> str:
    return gateway.proc.log()[offset:]


# -- item 4: metadata values that are not finite numbers ---------------------------------------


def test_a_non_finite_metadata_value_is_refused_naming_the_item_and_key_and_nothing_is_written(secured):
    name = _collection(secured)
    good = resources_pb2.Vector(id="good", embedding=[1, 0, 0, 0], metadata=_struct({"price": 3}))
    bad = resources_pb2.Vector(
        id="bad", embedding=[0, 1, 0, 0], metadata=_struct({"price": float("nan"), "a": {"b": [1]}})
    )
    upsert = call(
        secured,
        "grpc",
        "UpsertVectors",
        pb.UpsertVectorsRequest(collection=name, vectors=[good, bad]),
        _key(secured),
    )
    assert upsert.code == grpc.StatusCode.INVALID_ARGUMENT
    assert upsert.message == "vectors[1].metadata.price: nan is not a finite number"

    nested = resources_pb2.Vector(
        id="n", embedding=[1, 1, 0, 0], metadata=_struct({"a": {"b": [1, float("-inf")]}})
    )
    insert = call(
        secured, "grpc", "InsertVector", pb.InsertVectorRequest(collection=name, vector=nested), _key(secured)
    )
    assert insert.code == grpc.StatusCode.INVALID_ARGUMENT
    assert insert.message == "vector.metadata.a.b[1]: -inf is not a finite number"

    # JSON has no NaN or infinity: REST refuses the body before any field is read.
    for number in (b"NaN", b"1e999"):
        body = (
            b'{"vectors": [{"id": "good", "embedding": [1, 0, 0, 0]}, {"id": "bad", "embedding": [0, 1, 0, 0], "metadata": {"price": %s}}]}'
            % number
        )
        response = _rest(secured, f"/v1/collections/{name}/vectors:upsert", body)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]

    # A GraphQL float literal may overflow to infinity: the servicer names it.
    document = (
        f'mutation {{ upsertVectors(collection: "{name}", vectors: ['
        '{id: "good", embedding: [1, 0, 0, 0]}, '
        '{id: "bad", embedding: [0, 1, 0, 0], metadata: {price: 1e999}}'
        "]) { upsertedCount } }"
    )
    code, message = _graphql_error(_graphql(secured, document))
    assert (code, message) == ("INVALID_ARGUMENT", "vectors[1].metadata.price: inf is not a finite number")

    assert _count(secured, name) == 0


def _wait_for_job(gateway: Secured, job_id: str, timeout: float = 120) -> batch.BatchJob:
    stub = batch_service_pb2_grpc.BatchServiceStub(gateway.proc.channel())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = stub.GetBatchJob(
            batch.GetBatchJobRequest(id=job_id), metadata=gateway.metadata("writer"), timeout=10
        ).job
        if job.state in (
            batch.JOB_STATE_SUCCEEDED,
            batch.JOB_STATE_FAILED,
            batch.JOB_STATE_PARTIALLY_FAILED,
            batch.JOB_STATE_CANCELLED,
        ):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end within {timeout} s")


def _ids(gateway: Secured, name: str) -> set[str]:
    scrolled = call(
        gateway,
        "grpc",
        "ScrollVectors",
        pb.ScrollVectorsRequest(collection=name, page_size=1000),
        _key(gateway),
    )
    assert scrolled.code == grpc.StatusCode.OK, scrolled.message
    return {v.id for v in scrolled.response.vectors}


def _assert_bad_item_failed_alone(
    gateway: Secured, name: str, job: batch.BatchJob, message: str, offset: int
):
    assert job.state == batch.JOB_STATE_PARTIALLY_FAILED, job
    assert (job.done, job.failed) == (2, 1)
    [error] = job.errors
    assert (error.item_id, error.message) == ("bad", message)
    assert error.attempts == 1 and not error.dead_lettered  # a permanent error: tried once
    assert _ids(gateway, name) == {"a", "c"}
    assert f"job {job.id} will be retried" not in _log_since(gateway, offset)


def test_a_batch_item_with_a_non_finite_metadata_value_fails_alone_and_is_not_retried(secured):
    items = [
        batch.BatchItem(id="a", embedding=[1, 0, 0, 0], metadata=_struct({"price": 1.5})),
        batch.BatchItem(id="bad", embedding=[0, 1, 0, 0], metadata=_struct({"price": float("inf")})),
        batch.BatchItem(id="c", embedding=[0, 0, 1, 0]),
    ]
    message = "metadata.price: inf is not a finite number"
    stub = batch_service_pb2_grpc.BatchServiceStub(secured.proc.channel())
    metadata = secured.metadata("writer")

    name = _collection(secured)
    offset = len(secured.proc.log())
    job = stub.SubmitBatchJob(
        batch.SubmitBatchJobRequest(collection=name, operation=batch.OPERATION_BULK_UPSERT, items=items),
        metadata=metadata,
        timeout=30,
    ).job
    _assert_bad_item_failed_alone(secured, name, _wait_for_job(secured, job.id), message, offset)

    name = _collection(secured)
    offset = len(secured.proc.log())
    header = batch.UploadBatchJobHeader(collection=name, operation=batch.OPERATION_BULK_UPSERT)
    stream = [
        batch.UploadBatchJobRequest(header=header),
        batch.UploadBatchJobRequest(items=batch.BatchItemList(items=items)),
    ]
    job = stub.UploadBatchJob(iter(stream), metadata=metadata, timeout=30).job
    _assert_bad_item_failed_alone(secured, name, _wait_for_job(secured, job.id), message, offset)

    # GraphQL can carry an overflowing literal into a job's item; REST cannot (JSON has no inf).
    name = _collection(secured)
    offset = len(secured.proc.log())
    document = (
        f'mutation {{ submitBatchJob(collection: "{name}", operation: OPERATION_BULK_UPSERT, items: ['
        '{id: "a", embedding: [1, 0, 0, 0]}, '
        '{id: "bad", embedding: [0, 1, 0, 0], metadata: {price: 1e999}}, '
        '{id: "c", embedding: [0, 0, 1, 0]}'
        "]) { job { id } } }"
    )
    payload = _graphql(secured, document)
    assert not payload.get("errors"), payload
    job_id = payload["data"]["submitBatchJob"]["job"]["id"]
    _assert_bad_item_failed_alone(secured, name, _wait_for_job(secured, job_id), message, offset)
    body = (
        b'{"collection": "%s", "operation": "OPERATION_BULK_UPSERT", "items": [{"id": "a", "embedding": [1, 0, 0, 0], "metadata": {"price": 1e999}}]}'
        % name.encode()
    )
    response = _rest(secured, "/v1/jobs", body)
    assert response.status_code == 400, response.text


def test_a_batch_item_whose_text_is_over_the_limit_fails_alone(secured):
    name = _collection(secured, dimension=384)  # the local model's
    offset = len(secured.proc.log())
    items = [
        batch.BatchItem(id="a", text="a short note"),
        batch.BatchItem(id="bad", text="x" * (CHARS_PER_TEXT + 1)),
        batch.BatchItem(id="c", text="another short note"),
    ]
    job = call(
        secured,
        "grpc",
        "SubmitBatchJob",
        batch.SubmitBatchJobRequest(
            collection=name, operation=batch.OPERATION_BULK_EMBED_UPSERT, items=items
        ),
        _key(secured),
    )
    assert job.code == grpc.StatusCode.OK, job.message
    message = f"text: is {CHARS_PER_TEXT + 1} characters; limits.embed_chars_per_text is {CHARS_PER_TEXT}: split the text"
    _assert_bad_item_failed_alone(secured, name, _wait_for_job(secured, job.response.job.id), message, offset)


# -- item 5: how much one embedding call may ask for -------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_embedding_caps_name_the_limit_on_every_protocol(secured, protocol):
    reader = _key(secured, "reader")
    too_many = call(
        secured,
        protocol,
        "GenerateEmbedding",
        pb.GenerateEmbeddingRequest(texts=["t"] * (TEXTS_PER_CALL + 1)),
        reader,
    )
    assert too_many.code == grpc.StatusCode.INVALID_ARGUMENT
    assert too_many.message.startswith(
        f"texts: has {TEXTS_PER_CALL + 1} texts; limits.embed_texts_per_call is {TEXTS_PER_CALL}"
    )
    assert "BatchService.SubmitBatchJob" in too_many.message

    long_text = "y" * (CHARS_PER_TEXT + 1)
    expected = f"is {CHARS_PER_TEXT + 1} characters; limits.embed_chars_per_text is {CHARS_PER_TEXT}"
    for request, field in [
        (pb.GenerateEmbeddingRequest(text=long_text), "text"),
        (pb.GenerateEmbeddingRequest(texts=["fine", long_text]), "texts[1]"),
    ]:
        refused = call(secured, protocol, "GenerateEmbedding", request, reader)
        assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.message.startswith(f"{field}: {expected}"), refused.message

    name = _collection(secured, dimension=384)
    search = call(
        secured,
        protocol,
        "SearchVectors",
        pb.SearchVectorsRequest(collection=name, query_text=long_text),
        reader,
    )
    assert search.code == grpc.StatusCode.INVALID_ARGUMENT
    assert search.message.startswith(f"query_text: {expected}"), search.message


def test_cached_texts_do_not_lift_the_cap(secured):
    """Every text of the over-cap request is cached by an earlier call within the cap: the
    request is refused all the same, not answered from the cache."""
    reader = _key(secured, "reader")
    texts = [f"cached {uuid.uuid4().hex[:6]} {i}" for i in range(TEXTS_PER_CALL)]
    assert call(
        secured, "grpc", "GenerateEmbedding", pb.GenerateEmbeddingRequest(texts=texts), reader
    ).code == (grpc.StatusCode.OK)
    again = call(
        secured, "grpc", "GenerateEmbedding", pb.GenerateEmbeddingRequest(texts=[*texts, texts[0]]), reader
    )
    assert again.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "limits.embed_texts_per_call" in again.message


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
def test_a_5_mb_text_is_refused_without_memory_growth(secured, health_watch, protocol):
    """The issue's 5 MB text cost +777 MiB RSS on its way to the model; now it is refused on
    its length. (GraphQL refuses a body that size by limits.graphql_body_bytes.)"""
    reader = _key(secured, "reader")
    before = secured.rss_bytes()
    with health_watch() as watch:
        refused = call(
            secured, protocol, "GenerateEmbedding", pb.GenerateEmbeddingRequest(text="z" * 5_000_000), reader
        )
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.message.startswith(
        f"text: is 5000000 characters; limits.embed_chars_per_text is {CHARS_PER_TEXT}"
    )
    assert secured.rss_bytes() - before < 128 << 20
    assert watch.failures == 0 and watch.worst < 1.0


def test_the_same_refusals_over_graphql_websocket(secured):
    name = _seeded(secured)
    code, message = _over_websocket(
        secured,
        "query ($t: [String!]) { generateEmbedding(texts: $t) { model } }",
        {"t": ["t"] * (TEXTS_PER_CALL + 1)},
        "reader",
    )
    assert code == "INVALID_ARGUMENT"
    assert message.startswith(f"texts: has {TEXTS_PER_CALL + 1} texts; limits.embed_texts_per_call is")
    code, message = _over_websocket(
        secured,
        f'mutation {{ deleteVectors(collection: "{name}", filter: {{}}) {{ deletedCount }} }}',
        {},
        "writer",
    )
    assert (code, message.split(":")[0]) == ("INVALID_ARGUMENT", "filter")
    code, message = _over_websocket(
        secured,
        f'mutation {{ upsertVectors(collection: "{name}", vectors: '
        '[{id: "v0", embedding: [1, 0, 0, 0], metadata: {price: -1e999}}]) { upsertedCount } }',
        {},
        "writer",
    )
    assert (code, message) == ("INVALID_ARGUMENT", "vectors[0].metadata.price: -inf is not a finite number")
    assert _count(secured, name) == 3


# -- item 6: a filter with no conditions deletes nothing unless asked ------------------------------


def _seeded(gateway: Secured) -> str:
    name = _collection(gateway)
    vectors = [resources_pb2.Vector(id=f"v{i}", embedding=[1, i, 0, 0]) for i in range(3)]
    seeded = call(
        gateway,
        "grpc",
        "UpsertVectors",
        pb.UpsertVectorsRequest(collection=name, vectors=vectors),
        _key(gateway),
    )
    assert seeded.code == grpc.StatusCode.OK, seeded.message
    return name


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_empty_filter_deletes_nothing_without_allow_all(secured, protocol):
    name = _seeded(secured)
    empty_nested = filter_pb2.Filter(must=[filter_pb2.Condition(filter=filter_pb2.Filter())])
    for flt in (filter_pb2.Filter(), empty_nested):
        refused = call(
            secured,
            protocol,
            "DeleteVectors",
            pb.DeleteVectorsRequest(collection=name, filter=flt),
            _key(secured),
        )
        assert refused.code == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.message == (
            "filter: has no conditions, so it matches every vector in the collection: set allow_all to delete them all"
        )
    no_ids = call(
        secured,
        protocol,
        "DeleteVectors",
        pb.DeleteVectorsRequest(collection=name, ids=pb.VectorIds()),
        _key(secured),
    )
    assert (
        no_ids.code == grpc.StatusCode.INVALID_ARGUMENT
        and no_ids.message == "ids.ids: must list at least one id"
    )
    assert _count(secured, name) == 3

    everything = call(
        secured,
        protocol,
        "DeleteVectors",
        pb.DeleteVectorsRequest(collection=name, filter=filter_pb2.Filter(), allow_all=True),
        _key(secured),
    )
    assert everything.code == grpc.StatusCode.OK, everything.message
    assert everything.response.deleted_count == 3
    assert _count(secured, name) == 0


def test_the_raw_rest_body_with_an_empty_filter_is_refused(secured):
    name = _seeded(secured)
    response = _rest(secured, f"/v1/collections/{name}/vectors:delete", {"filter": {}})
    assert response.status_code == 400
    assert response.json()["message"].startswith("filter: has no conditions")
    assert _count(secured, name) == 3


# -- item 7: an upload's header is checked before its items ------------------------------------


def _upload_outcome(
    gateway: Secured, header: batch.UploadBatchJobHeader
) -> tuple[grpc.StatusCode, str, bool]:
    """Sends the header, then holds the stream open: the answer must come from the header
    alone. Returns the status, its message, and whether any item was ever sent."""
    release = threading.Event()
    sent_items = threading.Event()

    def stream():
        yield batch.UploadBatchJobRequest(header=header)
        release.wait(30)  # an answer that waited for the items would come after this
        sent_items.set()
        yield batch.UploadBatchJobRequest(
            items=batch.BatchItemList(items=[batch.BatchItem(id="a", embedding=[1, 0, 0, 0])])
        )

    stub = batch_service_pb2_grpc.BatchServiceStub(gateway.proc.channel())
    try:
        stub.UploadBatchJob(stream(), metadata=gateway.metadata("writer"), timeout=20)
        raise AssertionError("the upload was accepted")
    except grpc.RpcError as e:
        return e.code(), e.details(), sent_items.is_set()
    finally:
        release.set()


def test_an_upload_with_a_bad_header_fails_before_any_item_is_sent(secured):
    name = _collection(secured)
    foreign = _name("globex")
    created = call(
        secured,
        "grpc",
        "CreateCollection",
        pb.CreateCollectionRequest(
            collection=resources_pb2.Collection(
                name=foreign, dimension=DIM, distance=resources_pb2.DISTANCE_COSINE
            )
        ),
        secured.creds.keys["other-tenant"],
    )
    assert created.code == grpc.StatusCode.OK
    missing = _name("missing")
    cases = [
        (
            batch.UploadBatchJobHeader(collection=missing, operation=batch.OPERATION_BULK_UPSERT),
            grpc.StatusCode.NOT_FOUND,
            missing,
        ),
        (  # another tenant's collection does not exist for this caller
            batch.UploadBatchJobHeader(collection=foreign, operation=batch.OPERATION_BULK_UPSERT),
            grpc.StatusCode.NOT_FOUND,
            foreign,
        ),
        (
            batch.UploadBatchJobHeader(
                collection=name, operation=batch.OPERATION_BULK_EMBED_UPSERT, model="no-such-model"
            ),
            grpc.StatusCode.NOT_FOUND,
            "header.model: 'no-such-model' is not served; known models:",
        ),
        (
            batch.UploadBatchJobHeader(collection=name),
            grpc.StatusCode.INVALID_ARGUMENT,
            "header.operation: must be one of OPERATION_BULK_EMBED_UPSERT",
        ),
        (
            batch.UploadBatchJobHeader(collection="bad name!", operation=batch.OPERATION_BULK_UPSERT),
            grpc.StatusCode.INVALID_ARGUMENT,
            "header.collection: 'bad name!' is not a valid collection name",
        ),
    ]
    for header, code, fragment in cases:
        got, message, items_sent = _upload_outcome(secured, header)
        assert (got, items_sent) == (code, False), message
        assert fragment in message, message
    assert _count(secured, name) == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_submitted_job_names_an_unknown_model(secured, protocol):
    name = _collection(secured)
    request = batch.SubmitBatchJobRequest(
        collection=name,
        operation=batch.OPERATION_BULK_EMBED_UPSERT,
        model="no-such-model",
        items=[batch.BatchItem(id="a", text="t")],
    )
    refused = call(secured, protocol, "SubmitBatchJob", request, _key(secured))
    assert refused.code == grpc.StatusCode.NOT_FOUND
    assert refused.message.startswith("model: 'no-such-model' is not served; known models:")


# -- items 5 (cost) and 9 need limits of their own ----------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    gateway = start_secured(
        tmp_path_factory.mktemp("input-limits"),
        '[limits]\nauto_indexes_per_collection = 2\n\n[rate_limits.buckets]\n"key:reader" = {rate = 0.001, burst = 10}\n',
    )
    yield gateway
    gateway.proc.stop()


def test_an_embedding_call_costs_one_token_per_text_on_every_protocol(limited):
    """Burst 10, refilling 0.001/s: 6 texts pass, 6 more do not (whatever the protocol), 4 do."""
    reader = _key(limited, "reader")
    six = pb.GenerateEmbeddingRequest(texts=[f"cost {i}" for i in range(6)])
    assert call(limited, "grpc", "GenerateEmbedding", six, reader).code == grpc.StatusCode.OK
    for protocol in PROTOCOLS:
        refused = call(limited, protocol, "GenerateEmbedding", six, reader)
        assert refused.code == grpc.StatusCode.RESOURCE_EXHAUSTED, (protocol, refused.message)
        assert "rate limit of key:reader exceeded" in refused.message
        assert "this call costs 6 tokens, one per texts entry" in refused.message
        if protocol == "rest":
            assert refused.http_status == 429
    four = pb.GenerateEmbeddingRequest(texts=[f"cost {i}" for i in range(4)])
    assert call(limited, "graphql", "GenerateEmbedding", four, reader).code == grpc.StatusCode.OK
    one = pb.GenerateEmbeddingRequest(text="one more")
    assert call(limited, "rest", "GenerateEmbedding", one, reader).code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_automatic_indexes_stop_at_the_cap_filters_still_answer_and_the_log_says_so_once(limited):
    name = _collection(limited)
    vectors = [
        resources_pb2.Vector(
            id=f"v{i}", embedding=[1, i, 0, 0], metadata=_struct({f"k{j}": i % (j + 2) for j in range(5)})
        )
        for i in range(12)
    ]
    writer = _key(limited)
    assert call(
        limited, "grpc", "UpsertVectors", pb.UpsertVectorsRequest(collection=name, vectors=vectors), writer
    ).code == (grpc.StatusCode.OK)
    offset = len(limited.proc.log())
    for protocol in PROTOCOLS:
        for j in range(5):  # k0..k4: two get automatic indexes, three are scanned
            flt = filter_pb2.Filter(
                must=[
                    filter_pb2.Condition(
                        field=filter_pb2.FieldCondition(key=f"k{j}", match=filter_pb2.Match(integer=0))
                    )
                ]
            )
            counted = call(
                limited, protocol, "CountVectors", pb.CountVectorsRequest(collection=name, filter=flt), writer
            )
            assert counted.code == grpc.StatusCode.OK, counted.message
            assert counted.response.count == len(range(0, 12, j + 2))
            searched = call(
                limited,
                protocol,
                "SearchVectors",
                pb.SearchVectorsRequest(collection=name, query_vector=[1, 0, 0, 0], filter=flt, limit=20),
                writer,
            )
            assert searched.code == grpc.StatusCode.OK, searched.message
            assert len(searched.response.results) == len(range(0, 12, j + 2))
    capped = [
        line
        for line in _log_since(limited, offset).splitlines()
        if "limits.auto_indexes_per_collection" in line and name in line
    ]
    assert len(capped) == 1, capped
    assert "has 2 automatic payload indexes" in capped[0]
