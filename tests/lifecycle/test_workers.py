"""`citadel serve --workers 2`: two gateway processes on the same ports, one supervisor holding
the embedded store, cache, rate-limit buckets and job queue for both."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys

import grpc
import httpx
import pytest

from citadel.admin.v1 import admin_service_pb2 as admin_pb
from citadel.admin.v1 import admin_service_pb2_grpc
from citadel.vector.v1 import resources_pb2, vector_service_pb2_grpc
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.cli.conftest import citadel
from tests.jobs.conftest import wait_until
from tests.support.gateway_process import GatewayProcess

WORKERS = ["--insecure-no-auth", "--workers", "2"]


def fresh_stub(proc: GatewayProcess) -> tuple[grpc.Channel, vector_service_pb2_grpc.VectorServiceStub]:
    """A stub on a connection of its own, so the kernel picks a worker for it afresh."""
    channel = grpc.insecure_channel(proc.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)])
    return channel, vector_service_pb2_grpc.VectorServiceStub(channel)


def call_fresh(proc: GatewayProcess, method: str, request, **kwargs):
    channel, stub = fresh_stub(proc)
    try:
        return getattr(stub, method)(request, timeout=30, **kwargs)
    finally:
        channel.close()


def log_lines(proc: GatewayProcess) -> list[dict]:
    lines = []
    for line in proc.log().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def worker_pids(proc: GatewayProcess) -> dict[int, int]:
    """Worker index -> pid, from the supervisor's 'worker N ready (pid P)' lines (latest wins)."""
    pids = {}
    for line in log_lines(proc):
        msg = line.get("msg", "")
        if line.get("logger") == "citadel.workers" and msg.startswith("worker ") and " ready (pid " in msg:
            index = int(msg.split()[1])
            pids[index] = int(msg.rsplit("pid ", 1)[1].rstrip(")"))
    return pids


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:  # reaped since the kill(0): ENOENT at the open, ESRCH at the read
        return True


@pytest.fixture
def workers(tmp_path):
    proc = GatewayProcess(tmp_path / "data", args=WORKERS).start()
    yield proc
    proc.kill()


def make_collection(proc: GatewayProcess, name: str, dim: int = 4) -> None:
    call_fresh(
        proc,
        "CreateCollection",
        pb.CreateCollectionRequest(
            collection=resources_pb2.Collection(
                name=name, dimension=dim, distance=resources_pb2.DISTANCE_COSINE
            )
        ),
    )


def test_both_workers_serve_one_store_and_one_cache(workers):
    make_collection(workers, "shared")
    vectors = [resources_pb2.Vector(id=f"v{i}", embedding=[1.0, i + 1.0, 0.0, 0.0]) for i in range(50)]
    call_fresh(workers, "UpsertVectors", pb.UpsertVectorsRequest(collection="shared", vectors=vectors))
    query = pb.SearchVectorsRequest(collection="shared", query_vector=[0.0, 0.0, 1.0, 0.0], limit=100)
    for _ in range(16):  # each on a new connection: both workers answer, from the same store
        assert call_fresh(workers, "CountVectors", pb.CountVectorsRequest(collection="shared")).count == 50
        assert len(call_fresh(workers, "SearchVectors", query).results) == 50  # cached by whichever
    served_by = {line.get("worker") for line in log_lines(workers) if line.get("logger") == "citadel.access"}
    assert served_by == {0, 1}
    # An upsert answered by either worker invalidates every worker's cached searches.
    new = resources_pb2.Vector(id="new", embedding=[0.0, 0.0, 1.0, 0.0])
    call_fresh(workers, "UpsertVectors", pb.UpsertVectorsRequest(collection="shared", vectors=[new]))
    for _ in range(8):
        top = call_fresh(workers, "SearchVectors", query).results[0]
        assert (top.id, len(call_fresh(workers, "SearchVectors", query).results)) == ("new", 51)
    # REST and GraphQL share the HTTP port the same way.
    with httpx.Client(base_url=workers.http_url, timeout=30) as http:
        assert http.post("/v1/collections/shared/vectors:count", json={}).json() == {"count": "51"}
        assert http.get("/readyz").status_code == 200


def test_status_and_readyz_say_which_worker_answered(workers):
    seen = set()
    for _ in range(16):  # a new connection each time; the kernel spreads them over both workers
        channel = grpc.insecure_channel(workers.grpc_target)
        try:
            reply = admin_service_pb2_grpc.AdminServiceStub(channel).GetServiceStatus(
                admin_pb.GetServiceStatusRequest(), timeout=30
            )
        finally:
            channel.close()
        assert reply.ready and reply.workers == 2
        seen.add(reply.worker)
        with httpx.Client(base_url=workers.http_url, timeout=30) as http:
            ready = http.get("/readyz").json()
        assert ready["ready"] is True and ready["worker"] in (0, 1)
    assert seen == {0, 1}
    result = citadel("status", target=workers.grpc_target)
    assert result.code == 0, result.err
    assert re.search(r": ready, up .* \(worker [01] of 2 answered\)$", result.out.splitlines()[0])


def test_every_worker_answers_metrics_for_all_of_them(workers):
    # Connections go to whichever worker the kernel picks: call on fresh ones until both have
    # answered (each connection asks its worker's number), bounded.
    answered: set[int] = set()
    calls = 0
    while answered != {0, 1} or calls < 8:
        assert calls < 64, f"64 connections all went to worker(s) {answered}"
        channel, stub = fresh_stub(workers)
        try:
            stub.ListCollections(pb.ListCollectionsRequest(), timeout=30)
            status = admin_service_pb2_grpc.AdminServiceStub(channel).GetServiceStatus(
                admin_pb.GetServiceStatusRequest(), timeout=30
            )
            answered.add(status.worker)
        finally:
            channel.close()
        calls += 1

    def scrape() -> str:
        # A new connection each time: whichever worker answers, it speaks for both.
        with httpx.Client(base_url=workers.http_url, timeout=30) as http:
            return http.get("/metrics").text

    def list_calls(text: str) -> dict[str, float]:
        return {
            line.split('worker="')[1][0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("citadel_requests_total{")
            and "ListCollections" in line
            and 'code="OK"' in line
        }

    # The other worker's figures are as of its last push (every 2 s).
    wait_until(lambda: sum(list_calls(scrape()).values()) == calls, 30, "both workers' calls in one scrape")
    text = scrape()
    assert set(list_calls(text)) == {"0", "1"}
    assert "citadel_workers_ready 2.0" in text
    assert "citadel_worker_restarts_total 0.0" in text
    assert text.count("# TYPE citadel_requests_total counter") == 1  # one family, both workers' series


def test_one_rate_limit_for_all_workers(tmp_path):
    config = tmp_path / "citadel.toml"
    config.write_text('[rate_limits.buckets]\n"role:anonymous" = {rate = 0.05, burst = 5}\n')
    proc = GatewayProcess(tmp_path / "data", args=[*WORKERS, "--config", str(config)]).start()
    try:
        codes = []
        for _ in range(12):
            try:
                call_fresh(proc, "ListCollections", pb.ListCollectionsRequest())
                codes.append("OK")
            except grpc.RpcError as e:
                codes.append(e.code().name)
        # burst 5 across both workers (a refill of 0.05/s may add one during the run)
        assert 5 <= codes.count("OK") <= 6, codes
        assert set(codes) == {"OK", "RESOURCE_EXHAUSTED"}
        served_by = {line.get("worker") for line in log_lines(proc) if line.get("logger") == "citadel.access"}
        assert served_by == {0, 1}
    finally:
        proc.kill()


def test_a_dead_worker_is_restarted_and_the_others_keep_serving(workers):
    make_collection(workers, "survives")
    before = worker_pids(workers)
    assert sorted(before) == [0, 1]
    os.kill(before[0], signal.SIGKILL)
    wait_until(lambda: worker_pids(workers).get(0) not in (None, before[0]), 60, "worker 0 to be restarted")
    after = worker_pids(workers)
    assert after[1] == before[1]
    for _ in range(10):  # every connection lands on a live worker, and both see the collection
        got = call_fresh(workers, "GetCollection", pb.GetCollectionRequest(name="survives"))
        assert got.collection.name == "survives"
    assert "worker 0 exited (code -9): restarting it" in workers.log()
    assert workers.stop() == 0
    assert all(process_gone(pid) for pid in after.values())


def test_workers_stop_when_the_supervisor_is_killed(workers):
    pids = worker_pids(workers)
    assert len(pids) == 2
    workers.proc.kill()  # no chance to stop them: they notice the host is gone
    workers.proc.wait(10)
    wait_until(lambda: all(process_gone(pid) for pid in pids.values()), 30, "orphaned workers to exit")


def serve_once(data_dir, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`citadel serve --workers 2 ...`, expected to fail start-up."""
    return subprocess.run(
        [sys.executable, "-m", "citadel.server.cli", "serve", *WORKERS, "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_a_taken_port_fails_start_up_naming_it(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        result = serve_once(tmp_path / "data", "--grpc-port", str(port), "--http-port", "0")
    finally:
        taken.close()
    assert result.returncode == 2
    assert f"gRPC port {port} is already in use: choose another with --grpc-port" in result.stderr


def test_a_second_worker_group_cannot_join_the_first_ones_port(workers, tmp_path):
    result = serve_once(tmp_path / "other", "--grpc-port", str(workers.grpc_port), "--http-port", "0")
    assert result.returncode == 2
    assert f"gRPC port {workers.grpc_port} is already in use" in result.stderr
    assert call_fresh(workers, "ListCollections", pb.ListCollectionsRequest()) is not None


def test_a_data_dir_in_use_fails_start_up_and_leaves_no_worker(tmp_path):
    lone = GatewayProcess(tmp_path / "data").start()
    try:
        result = serve_once(tmp_path / "data", "--grpc-port", "0", "--http-port", "0")
        assert result.returncode == 2
        assert (
            f"shared state: data dir {tmp_path / 'data' / 'edge'} is in use by another process"
            in result.stderr
        )
        assert (
            "citadel-worker"
            not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        )
        assert lone.stub().ListCollections(pb.ListCollectionsRequest(), timeout=10) is not None
    finally:
        lone.kill()


def test_an_unreachable_redis_fails_start_up_before_any_worker(tmp_path):
    url = f"redis://127.0.0.1:{_free_port()}/0"
    result = serve_once(
        tmp_path / "data", "--grpc-port", "0", "--http-port", "0", env={"CITADEL_REDIS_URL": url}
    )
    assert result.returncode == 2
    assert f"redis: redis.url: cannot reach Redis at {url}" in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
