"""SIGTERM while calls are in flight and a batch job runs: the calls complete, the process
exits 0, and the job resumes and finishes on the next start."""

from __future__ import annotations

import signal
import threading
import time
import uuid

import grpc
import pytest

from citadel.vector.v1 import vector_service_pb2 as pb
from tests.jobs.conftest import (
    FAST_LEASE,
    all_ids,
    get_job,
    make_collection,
    submit_texts,
    wait_terminal,
    wait_until,
)
from tests.lifecycle.test_workers import fresh_stub, process_gone, worker_pids
from tests.support.gateway_process import GatewayProcess

N = 1500


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_calls_and_the_job_resumes(tmp_path, workers):
    args = ["--insecure-no-auth", "--workers", str(workers)]
    proc = GatewayProcess(tmp_path / "data", env=FAST_LEASE, args=args).start()
    try:
        make_collection(proc, "drain")
        job = submit_texts(proc, "drain", N)
        wait_until(lambda: get_job(proc, job.id).done >= 200, 120, "the job to be under way")

        stub = proc.stub()
        outcomes: list[tuple[str, float]] = []
        stop = threading.Event()

        def steady_stream():
            while not stop.is_set():
                try:
                    stub.CountVectors(pb.CountVectorsRequest(collection="drain"), timeout=10)
                    outcomes.append(("OK", time.monotonic()))
                except grpc.RpcError as e:
                    outcomes.append((e.code().name, time.monotonic()))
                    if e.code() == grpc.StatusCode.UNAVAILABLE:
                        return  # the server has stopped accepting

        texts = [f"in flight during shutdown {uuid.uuid4().hex} {i}" for i in range(120)]
        slow = stub.GenerateEmbedding.future(pb.GenerateEmbeddingRequest(texts=texts), timeout=60)
        stream = threading.Thread(target=steady_stream)
        stream.start()
        time.sleep(0.1)  # both are in flight now
        signalled = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)

        assert len(slow.result().embeddings) == 120  # accepted before SIGTERM: completed
        assert proc.proc.wait(30) == 0
        stop.set()
        stream.join(10)
        assert any(code == "OK" for code, _ in outcomes)
        # Calls made after SIGTERM are refused (UNAVAILABLE, or CANCELLED when they reach a server
        # already stopping); nothing fails before it.
        assert all(code == "OK" or at >= signalled for code, at in outcomes), outcomes
        assert {code for code, _ in outcomes} <= {"OK", "UNAVAILABLE", "CANCELLED"}, outcomes
        proc.start()
        assert get_job(proc, job.id).done < N  # unfinished at shutdown: it resumes here
        final = wait_terminal(proc, job.id, timeout=180)
        assert (final.done, final.failed) == (N, 0)
        ids = all_ids(proc, "drain")
        assert len(ids) == N == len(set(ids))
    finally:
        proc.kill()


@pytest.mark.parametrize("workers", [1, 2])
def test_second_signal_exits_at_once(tmp_path, workers):
    args = ["--insecure-no-auth", "--workers", str(workers)]
    # 600 texts in one call keep the local model busy past both signals (the default cap,
    # limits.embed_texts_per_call, would refuse them at once and the first signal would stop it).
    env = {"CITADEL_GRACE_SECONDS": "60", "CITADEL_EMBED_TEXTS_PER_CALL": "600"}
    proc = GatewayProcess(tmp_path / "data", env=env, args=args).start()
    try:
        pids = worker_pids(proc)
        assert len(pids) == (workers if workers > 1 else 0)
        channel, stub = fresh_stub(proc)
        texts = [f"keeps the server busy {uuid.uuid4().hex} {i}" for i in range(600)]
        busy = stub.GenerateEmbedding.future(pb.GenerateEmbeddingRequest(texts=texts), timeout=120)
        time.sleep(0.3)
        proc.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        proc.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert proc.proc.wait(20) == 1 and time.monotonic() - started < 10
        wait_until(lambda: all(process_gone(pid) for pid in pids.values()), 10, "workers to be killed")
        busy.cancel()
        channel.close()
    finally:
        proc.kill()
