"""A Redis that restarts without its data (no persistence) loses the job stream and its
consumer group: the queue makes them again, and jobs submitted afterwards still run."""

from __future__ import annotations

import time

import grpc

from tests.jobs.conftest import make_collection, submit_texts, wait_terminal
from tests.support.gateway_process import GatewayProcess


def _submit_when_redis_answers(proc, collection: str, n: int):
    deadline = time.monotonic() + 30
    while True:
        try:
            return submit_texts(proc, collection, n)
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_jobs_run_after_redis_restarts_empty(redis_server, tmp_path):
    proc = GatewayProcess(
        tmp_path / "data", env={"CITADEL_REDIS_URL": redis_server.url, "CITADEL_ACCESS_LOG": "false"}
    ).start()
    try:
        make_collection(proc, "notes")
        first = submit_texts(proc, "notes", 5)
        assert wait_terminal(proc, first.id, timeout=60).done == 5
        redis_server.restart()  # same port, empty: --save "" --appendonly no
        after = _submit_when_redis_answers(proc, "notes", 7)
        job = wait_terminal(proc, after.id, timeout=60)
        assert (job.done, job.failed) == (7, 0)
    finally:
        proc.stop()
    assert proc.log().count("NOGROUP") == 0  # recovered, not logged as a failing claim loop
