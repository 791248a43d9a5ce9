"""The nine models' integration patterns over gRPC and REST, on the default configuration
(every model on the local model): real-time answers, hybrid queues large non-urgent requests
as batch jobs, bulk-only refuses synchronous calls and serves batch jobs; SearchVectors embeds
query_text with a model whose dimension must match the collection."""

from __future__ import annotations

import uuid

import grpc
import httpx
import numpy as np
import pytest

from citadel.batch.v1 import batch_service_pb2 as batch
from citadel.batch.v1 import batch_service_pb2_grpc
from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.models.conftest import code_of, embed, wait_until

REALTIME = ["phi3", "general"]
HYBRID = ["openchat", "hermes"]
BULK_ONLY = ["mixtral", "yi34", "deepcoder", "imp", "deepseek"]
BUDGET = 32  # models.realtime_budget's default
OVER = [f"sentence {i} about tides and moths" for i in range(BUDGET + 1)]
TERMINAL = {batch.JOB_STATE_SUCCEEDED, batch.JOB_STATE_FAILED, batch.JOB_STATE_PARTIALLY_FAILED}


@pytest.fixture(scope="module")
def http(gateway):
    with httpx.Client(base_url=gateway.http_url, timeout=60, headers={"cache-control": "no-cache"}) as client:
        yield client


def jobs(gateway):
    return batch_service_pb2_grpc.BatchServiceStub(gateway.channel())


def finished_job(gateway, job_id: str) -> batch.BatchJob:
    def done():
        job = jobs(gateway).GetBatchJob(batch.GetBatchJobRequest(id=job_id), timeout=10).job
        return job if job.state in TERMINAL else None

    return wait_until(done, 60, f"job {job_id}")


def test_list_models_shows_nine_models_with_patterns(stub, http):
    reply = stub.ListModels(pb.ListModelsRequest(), timeout=10)
    patterns = {m.name: m.pattern for m in reply.models}
    assert reply.default_model == "general"
    assert patterns == {
        **{m: pb.INTEGRATION_PATTERN_REALTIME for m in REALTIME},
        **{m: pb.INTEGRATION_PATTERN_HYBRID for m in HYBRID},
        **{m: pb.INTEGRATION_PATTERN_BULK_ONLY for m in BULK_ONLY},
    }
    for m in reply.models:
        (local,) = m.backends
        assert (m.dimensions, local.provider, local.circuit) == (384, "local", pb.CIRCUIT_STATE_CLOSED)
        assert local.healthy and local.consistent and not local.ejected
    rest = http.get("/v1/models").json()
    assert {m["name"]: m["pattern"] for m in rest["models"]}["hermes"] == "INTEGRATION_PATTERN_HYBRID"
    assert rest["defaultModel"] == "general"


@pytest.mark.parametrize("model", REALTIME)
def test_realtime_answers_synchronously_whatever_the_size(model, stub, http):
    one = embed(stub, "a quiet harbour at dawn", model)
    assert (one.model, one.dimensions, len(one.embedding), one.job_id) == (model, 384, 384, "")
    many = embed(stub, OVER, model)
    assert len(many.embeddings) == len(OVER) and not many.job_id
    rest = http.post("/v1/embeddings", json={"texts": OVER[:3], "model": model})
    assert rest.status_code == 200, rest.text
    body = rest.json()
    assert body["model"] == model and len(body["embeddings"]) == 3
    np.testing.assert_allclose(body["embeddings"][0]["values"], many.embeddings[0].values, atol=1e-6)


@pytest.mark.parametrize("model", HYBRID)
def test_hybrid_is_synchronous_within_budget_or_urgent_else_a_job(model, gateway, stub, http):
    small = embed(stub, OVER[:BUDGET], model)
    assert len(small.embeddings) == BUDGET and not small.job_id
    urgent = embed(stub, OVER, model, urgent=True)
    assert len(urgent.embeddings) == len(OVER) and not urgent.job_id
    texts = [f"{t} {uuid.uuid4().hex}" for t in OVER]
    queued = embed(stub, texts, model)
    assert queued.job_id and not queued.embeddings and queued.model == model
    job = finished_job(gateway, queued.job_id)
    assert job.state == batch.JOB_STATE_SUCCEEDED and job.model == model
    assert [e.item_id for e in job.embeddings] == [str(i) for i in range(len(texts))]
    direct = embed(stub, texts[:2], model)
    np.testing.assert_allclose(job.embeddings[1].values, direct.embeddings[1].values, atol=1e-6)

    rest = http.post("/v1/embeddings", json={"texts": OVER, "model": model})
    assert rest.status_code == 200 and rest.json()["jobId"] and "embeddings" not in rest.json()
    rest = http.post("/v1/embeddings", json={"texts": OVER, "model": model, "urgent": True})
    assert len(rest.json()["embeddings"]) == len(OVER)


@pytest.mark.parametrize("model", BULK_ONLY)
def test_bulk_only_refuses_synchronous_calls_and_serves_batch_jobs(model, gateway, stub, http):
    code, message = code_of(lambda: embed(stub, "one text", model))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert f"model: '{model}' is bulk-only" in message and "BatchService.SubmitBatchJob" in message
    code, _ = code_of(lambda: embed(stub, OVER, model, urgent=True))  # urgent changes nothing
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    rest = http.post("/v1/embeddings", json={"text": "one text", "model": model})
    assert rest.status_code == 400 and rest.json()["code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert "BatchService.SubmitBatchJob" in rest.json()["message"]

    submitted = jobs(gateway).SubmitBatchJob(
        batch.SubmitBatchJobRequest(
            operation=batch.OPERATION_EMBED,
            model=model,
            items=[batch.BatchItem(id=f"i{i}", text=t) for i, t in enumerate(OVER[:5])],
        ),
        timeout=30,
    )
    job = finished_job(gateway, submitted.job.id)
    assert job.state == batch.JOB_STATE_SUCCEEDED and len(job.embeddings) == 5
    reference = embed(stub, OVER[:5], "general")  # same local model behind every name here
    np.testing.assert_allclose(job.embeddings[4].values, reference.embeddings[4].values, atol=1e-6)


def test_unknown_model_is_not_found(stub, http):
    code, message = code_of(lambda: embed(stub, "x", "gpt-17"))
    assert code == grpc.StatusCode.NOT_FOUND and "model: 'gpt-17' is not served" in message
    assert http.post("/v1/embeddings", json={"text": "x", "model": "gpt-17"}).status_code == 404


@pytest.fixture(scope="module")
def docs(gateway):
    stub = gateway.stub()
    name = f"docs_{uuid.uuid4().hex[:8]}"
    texts = {
        "river": "A river carries water from the hills to the sea.",
        "compiler": "A compiler translates source code into machine instructions.",
        "bread": "Bread dough rises because yeast produces carbon dioxide.",
    }
    vectors = embed(stub, list(texts.values()), "general").embeddings
    stub.CreateCollection(
        pb.CreateCollectionRequest(
            collection=resources_pb2.Collection(
                name=name, dimension=384, distance=resources_pb2.DISTANCE_COSINE
            )
        )
    )
    stub.UpsertVectors(
        pb.UpsertVectorsRequest(
            collection=name,
            vectors=[
                resources_pb2.Vector(id=k, embedding=v.values) for k, v in zip(texts, vectors, strict=True)
            ],
        )
    )
    small = f"small_{uuid.uuid4().hex[:8]}"
    stub.CreateCollection(
        pb.CreateCollectionRequest(collection=resources_pb2.Collection(name=small, dimension=3, distance=1))
    )
    return name, small


def test_search_by_query_text(docs, stub, http):
    name, _ = docs
    for model in ("", "phi3", "openchat"):
        reply = stub.SearchVectors(
            pb.SearchVectorsRequest(
                collection=name, query_text="how do programs get built?", model=model, limit=1
            )
        )
        assert reply.results[0].id == "compiler"
    rest = http.post(
        f"/v1/collections/{name}/vectors:search", json={"queryText": "yeast and flour", "limit": 1}
    )
    assert rest.status_code == 200, rest.text
    assert rest.json()["results"][0]["id"] == "bread"


def test_search_by_query_text_errors_name_the_field(docs, stub):
    name, small = docs

    def search(**fields):
        return code_of(lambda: stub.SearchVectors(pb.SearchVectorsRequest(**fields), timeout=30))

    code, message = search(collection=small, query_text="water")
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message == (
        f"model: 'general' makes 384-dimensional embeddings but collection {small!r} has dimension 3"
    )
    code, message = search(collection=name, query_text="water", query_vector=[0.1] * 384)
    assert (code, message) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "query_text: set query_vector or query_text, not both",
    )
    code, message = search(collection=name)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and message.startswith("query_vector: is required")
    code, message = search(collection=name, query_text="   ")
    assert (code, message) == (grpc.StatusCode.INVALID_ARGUMENT, "query_text: must not be blank")
    code, message = search(collection=name, query_vector=[0.1] * 384, model="phi3")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and message.startswith("model:")
    code, message = search(collection=name, query_text="water", model="mixtral")
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "bulk-only" in message
    code, message = search(collection=name, query_text="water", model="nope")
    assert code == grpc.StatusCode.NOT_FOUND
    code, message = search(collection=name, query_text="water", limit=5000)  # checked before embedding
    assert code == grpc.StatusCode.INVALID_ARGUMENT and message.startswith("limit:")
