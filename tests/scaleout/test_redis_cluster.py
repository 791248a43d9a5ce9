"""Gateways on a real three-primary Redis Cluster (redis.cluster = true): the response cache
hits, is invalidated by writes and flushed by the admin, and spreads over the primaries; two
gateways share one rate-limit budget; a batch job survives a replica SIGKILLed mid-job with
every item's result exactly once; a finished job expires after jobs.retention_seconds."""

from __future__ import annotations

import re
import uuid

import grpc
import httpx

from citadel.batch.v1 import batch_service_pb2 as batch
from tests.interceptors.test_rate_limit import LIMITS, outcomes
from tests.jobs.conftest import FAST_LEASE, get_job, jobs_stub, text_of, wait_terminal, wait_until
from tests.scaleout.conftest import cluster_env
from tests.support.auth_config import write_config
from tests.support.gateway_process import GatewayProcess

N_EMBED = 1200


def make_collections(http: httpx.Client, prefix: str, count: int) -> list[str]:
    """`count` 2-d collections of fresh names (spread over the cluster's slots by their tags)."""
    names = [f"{prefix}-{i}-{uuid.uuid4().hex[:6]}" for i in range(count)]
    for name in names:
        made = http.post(
            "/v1/collections", json={"name": name, "dimension": 2, "distance": "DISTANCE_COSINE"}
        )
        assert made.status_code == 200, made.text
    return names


def test_cache_hits_invalidates_and_flushes_on_a_cluster(redis_cluster, tmp_path):
    proc = GatewayProcess(tmp_path / "data", env=cluster_env(redis_cluster)).start()
    try:
        with httpx.Client(base_url=proc.http_url, timeout=30) as http:
            names = make_collections(http, "cl", 12)
            for name in names:
                upsert = {"vectors": [{"id": "a", "embedding": [1, 0]}]}
                assert http.post(f"/v1/collections/{name}/vectors:upsert", json=upsert).status_code == 200

            def search(name: str) -> httpx.Response:
                reply = http.post(f"/v1/collections/{name}/vectors:search", json={"queryVector": [1, 0]})
                assert reply.status_code == 200, reply.text
                return reply

            first = names[0]
            assert search(first).headers["cache-status"] == "citadel; fwd=miss"
            assert search(first).headers["cache-status"] == "citadel; hit"
            # A write invalidates: the next search misses and sees it.
            upsert = {"vectors": [{"id": "b", "embedding": [0.9, 0.1]}]}
            assert http.post(f"/v1/collections/{first}/vectors:upsert", json=upsert).status_code == 200
            after_write = search(first)
            assert after_write.headers["cache-status"] == "citadel; fwd=miss"
            assert {m["id"] for m in after_write.json()["results"]} == {"a", "b"}
            assert search(first).headers["cache-status"] == "citadel; hit"

            for name in names[1:]:
                search(name)
                assert search(name).headers["cache-status"] == "citadel; hit"
            # The admin flush reaches every collection's entries.
            assert http.post("/v1/cache:flush", json={}).status_code == 200
            assert {search(name).headers["cache-status"] for name in names} == {"citadel; fwd=miss"}
            assert search(names[3]).headers["cache-status"] == "citadel; hit"
            # Embeddings are cached per text on the cluster too.
            text = {"text": f"cluster {uuid.uuid4().hex}"}
            assert http.post("/v1/embeddings", json=text).headers["cache-status"] == "citadel; fwd=miss"
            assert http.post("/v1/embeddings", json=text).headers["cache-status"] == "citadel; hit"

        # Twelve collections' entries are not all on one primary: no one slot holds the cache.
        holding = [port for port in redis_cluster.ports if _cache_entries(redis_cluster, port)]
        assert len(holding) >= 2, holding
    finally:
        proc.kill()


def _cache_entries(cluster, port: int) -> int:
    keys = cluster.run("--scan", "--pattern", "citadel:cache:*:e:*", port=port).split()
    return len(keys)


def test_two_gateways_share_one_rate_limit_budget_on_a_cluster(redis_cluster, tmp_path):
    creds = write_config(tmp_path / "citadel.toml", extra=LIMITS)
    env = cluster_env(redis_cluster)
    args = ["--config", str(creds.config_path)]
    procs = [GatewayProcess(tmp_path / f"data{i}", env=env, args=args).start() for i in range(2)]
    try:
        stubs = [p.stub() for p in procs]
        ok, refused = outcomes(stubs, creds.bearer("reader"), 12)
        assert 6 <= ok <= 7, ok  # burst 6 across both (a refill of 0.2/s may add one)
        assert refused and all(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for e in refused)
        assert "rate limit of key:reader exceeded" in refused[0].details()
        tenant_ok, tenant_refused = outcomes(stubs, creds.bearer("other-tenant"), 6)
        assert 3 <= tenant_ok <= 4 and "tenant:globex" in tenant_refused[0].details()
    finally:
        for proc in procs:
            proc.kill()


def test_a_job_survives_a_replica_killed_mid_job_with_every_result_once(redis_cluster, tmp_path):
    """Two replicas split an embed job's chunks; one is SIGKILLed at 30 %: its chunks are
    taken over after the lease, and the job's results hold every item exactly once."""
    # A lease long enough for a chunk's embeddings on a busy two-core machine (its worker's
    # deadline is 0.8 of it), short enough that the killed replica's chunks come back soon.
    env = cluster_env(redis_cluster, **{**FAST_LEASE, "CITADEL_JOBS_LEASE_SECONDS": "8"})
    a = GatewayProcess(tmp_path / "a", env=env).start()
    b = GatewayProcess(tmp_path / "b", env=env).start()
    try:
        items = [batch.BatchItem(id=f"doc-{i}", text=text_of(i)) for i in range(N_EMBED)]
        job = (
            jobs_stub(a)
            .SubmitBatchJob(
                batch.SubmitBatchJobRequest(
                    operation=batch.OPERATION_EMBED, items=items, idempotency_key="k1"
                ),
                timeout=60,
            )
            .job
        )
        wait_until(
            lambda: get_job(b, job.id).done >= 0.3 * N_EMBED and f"of job {job.id}:" in b.log(),
            120,
            "30 % progress with a chunk done by replica b",
        )
        b.kill()  # SIGKILL: its chunks in flight stay pending until their lease runs out
        final = wait_terminal(a, job.id, timeout=180)
        assert final.state == batch.JOB_STATE_SUCCEEDED, final.errors
        assert (final.done, final.failed) == (N_EMBED, 0)
        ids = [e.item_id for e in final.embeddings]
        assert sorted(ids) == sorted(item.id for item in items)  # each exactly once
        b.start()  # the replica comes back to a queue with nothing left of the job
        assert get_job(b, job.id).done == N_EMBED
        # The idempotency key still names the job: submitting again adds nothing.
        again = jobs_stub(b).SubmitBatchJob(
            batch.SubmitBatchJobRequest(
                operation=batch.OPERATION_EMBED, items=items[:3], idempotency_key="k1"
            ),
            timeout=60,
        )
        assert again.job.id == job.id and again.job.done == N_EMBED
    finally:
        a.kill()
        b.kill()


def test_a_finished_job_expires_after_the_retention_on_a_cluster(redis_cluster, tmp_path):
    env = cluster_env(redis_cluster, CITADEL_JOBS_RETENTION_SECONDS="2")
    proc = GatewayProcess(tmp_path / "data", env=env).start()
    try:
        stub = jobs_stub(proc)
        items = [batch.BatchItem(id=f"t-{i}", text=text_of(i)) for i in range(5)]
        job = stub.SubmitBatchJob(
            batch.SubmitBatchJobRequest(operation=batch.OPERATION_EMBED, items=items, idempotency_key="once"),
            timeout=60,
        ).job
        assert wait_terminal(proc, job.id, timeout=60).done == 5
        assert [j.id for j in stub.ListBatchJobs(batch.ListBatchJobsRequest(), timeout=10).jobs] == [job.id]

        def gone() -> bool:
            try:
                get_job(proc, job.id)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.NOT_FOUND, e
                return True
            return False

        wait_until(gone, 20, "the finished job to expire")
        assert not stub.ListBatchJobs(batch.ListBatchJobsRequest(), timeout=10).jobs
        # Nothing of the job is left on any primary.
        tag = re.compile(r"citadel:jobs:\{[0-9a-f]+\}(job|chunks|errors|results)$")
        left = [k for port in redis_cluster.ports for k in redis_cluster.run("--scan", port=port).split()]
        assert not [k for k in left if tag.match(k)], left
        # And its idempotency key went with it: the same key queues a new job.
        fresh = stub.SubmitBatchJob(
            batch.SubmitBatchJobRequest(
                operation=batch.OPERATION_EMBED, items=items[:1], idempotency_key="once"
            ),
            timeout=60,
        ).job
        assert fresh.total == 1
    finally:
        proc.kill()


def test_a_primary_down_is_unavailable_or_uncached_never_internal(redis_cluster, tmp_path):
    """With one primary killed, reads are served uncached and queue calls answer UNAVAILABLE
    (first its slots fail to connect, then the whole cluster reports itself down)."""
    proc = GatewayProcess(tmp_path / "data", env=cluster_env(redis_cluster)).start()
    try:
        with httpx.Client(base_url=proc.http_url, timeout=30) as http:
            names = make_collections(http, "down", 6)
            redis_cluster.procs[1].kill()
            redis_cluster.procs[1].wait(10)
            for name in names:  # the killed primary's slots cannot be reached: served uncached
                reply = http.post(f"/v1/collections/{name}/vectors:search", json={"queryVector": [1, 0]})
                assert reply.status_code == 200, reply.text
            live = redis_cluster.ports[0]
            wait_until(
                lambda: "cluster_state:fail" in redis_cluster.run("cluster", "info", port=live),
                20,
                "the cluster to report itself down",
            )
            for name in names:
                reply = http.post(f"/v1/collections/{name}/vectors:search", json={"queryVector": [1, 0]})
                assert reply.status_code == 200, reply.text
                assert reply.headers["cache-status"] == 'citadel; fwd=bypass; detail="cache unavailable"'
            listed = http.get("/v1/jobs")
            assert listed.status_code == 503, listed.text
            assert "job queue unavailable (Redis)" in listed.json()["message"], listed.text
        assert "unhandled error" not in proc.log()
    finally:
        proc.kill()
