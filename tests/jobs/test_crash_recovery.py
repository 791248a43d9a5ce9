"""SIGKILL a gateway in the middle of a job: after a restart the job finishes, and the
collection holds every id exactly once with the right vector. Both queue backends."""

from __future__ import annotations

import random

import numpy as np
import pytest

from citadel.server.models.local import LocalEmbedder
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.jobs.conftest import (
    FAST_LEASE,
    all_ids,
    get_job,
    make_collection,
    submit_texts,
    text_of,
    wait_terminal,
    wait_until,
)
from tests.support.gateway_process import GatewayProcess

N = 2000


def check_vectors(proc, collection: str, sample: list[int]) -> None:
    expected = LocalEmbedder().embed([text_of(i) for i in sample])
    for i, want in zip(sample, expected, strict=True):
        got = proc.stub().GetVector(pb.GetVectorRequest(collection=collection, id=f"doc-{i}")).vector
        assert float(np.dot(np.asarray(got.embedding), want)) > 0.999, i


@pytest.mark.parametrize("queue", ["sqlite", "redis"])
def test_sigkill_at_30_percent_then_resume(queue, request, tmp_path):
    env = dict(FAST_LEASE)
    if queue == "redis":
        env["CITADEL_REDIS_URL"] = request.getfixturevalue("redis_server").url
    proc = GatewayProcess(tmp_path / "data", env=env).start()
    try:
        make_collection(proc, "crash")
        job = submit_texts(proc, "crash", N)
        at_kill = wait_until(lambda: (d := get_job(proc, job.id).done) >= 0.3 * N and d, 120, "30 % progress")
        proc.kill()  # SIGKILL: no shutdown, chunks in flight stay leased
        assert at_kill < N

        proc.start()
        final = wait_terminal(proc, job.id, timeout=180)
        assert final.state == 3, final  # SUCCEEDED
        assert (final.done, final.failed) == (N, 0)
        ids = all_ids(proc, "crash")
        assert len(ids) == N and len(set(ids)) == N
        check_vectors(proc, "crash", random.Random(4).sample(range(N), 25))
    finally:
        proc.kill()


def test_two_replicas_share_chunks_and_survive_a_kill(redis_server, tmp_path):
    """Replicas on one Redis split the chunks; each writes into its own embedded store here,
    so the union of the two stores is the collection."""
    # The replicas share Redis (queue and cache) but each has its own embedded store: the
    # cache must keep their answers apart.
    env = {**FAST_LEASE, "CITADEL_REDIS_URL": redis_server.url}
    a = GatewayProcess(tmp_path / "a", env=env).start()
    b = GatewayProcess(tmp_path / "b", env=env).start()
    try:
        for proc in (a, b):
            make_collection(proc, "shared")
        job = submit_texts(a, "shared", N)
        wait_until(lambda: get_job(a, job.id).done >= 0.3 * N, 120, "30 % progress")
        b.kill()
        final = wait_terminal(a, job.id, timeout=180)
        assert (final.done, final.failed) == (N, 0)
        b.start()
        in_a, in_b = set(all_ids(a, "shared")), set(all_ids(b, "shared"))
        assert in_b, "replica b took no chunk before it was killed"
        assert in_a | in_b == {f"doc-{i}" for i in range(N)}  # nothing lost
        # Only chunks b held when it died were written twice (once by each replica).
        assert len(in_a & in_b) <= 3 * 100
    finally:
        a.kill()
        b.kill()
