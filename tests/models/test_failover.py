"""Kill one of two backends under steady load: no client sees a failure, the dead backend is
marked unhealthy by the first request that cannot connect to it (passive health) and taken out
of rotation, and when it comes back its next probe marks it healthy and traffic returns."""

from __future__ import annotations

import threading
import time
import uuid

import grpc

from citadel.vector.v1 import vector_service_pb2 as pb
from tests.models.conftest import backend, backends_of, embed, start_gateway, wait_until

MAX_REQUESTS_PER_CLIENT = 5000
MAX_SECONDS = 60


class SteadyLoad:
    """A few clients calling GenerateEmbedding back to back, bounded in count and time."""

    def __init__(self, gw, model: str, clients: int = 3) -> None:
        self._stub = gw.stub()
        self._model = model
        self._stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(clients)]

    def _run(self, n: int) -> None:
        started = time.monotonic()
        for i in range(MAX_REQUESTS_PER_CLIENT):
            if self._stop.is_set() or time.monotonic() - started > MAX_SECONDS:
                return
            try:
                reply = embed(
                    self._stub, f"client {n} request {i} {uuid.uuid4().hex[:8]}", self._model, timeout=10
                )
                assert len(reply.embedding) == 384
                self.ok += 1
            except grpc.RpcError as e:
                self.failures.append(f"{e.code().name}: {e.details()}")

    def __enter__(self) -> SteadyLoad:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(MAX_SECONDS)


def test_kill_one_of_two_backends_under_load(servers, tmp_path):
    a, b = servers.many("a", "b")
    gw = start_gateway(
        tmp_path,
        {"duo": {"backends": [backend(a), backend(b)]}},
        default="duo",
        health_interval_seconds=1.0,
        resilience={
            "breaker_failures": 3,
            "breaker_open_seconds": 1.0,
            "eject_failures": 3,
            "eject_base_seconds": 0.5,
        },
    )
    try:
        with SteadyLoad(gw, "duo") as load:
            wait_until(
                lambda: a.stats()["requests"] > 20 and b.stats()["requests"] > 20, 20, "traffic on both"
            )
            b.kill()
            down = wait_until(
                lambda: (s := backends_of(gw, "duo")["b"]).healthy is False and s,
                10,
                "b to be marked unhealthy",
                interval=0.02,
            )
            assert down.last_error and backends_of(gw, "duo")["a"].circuit == pb.CIRCUIT_STATE_CLOSED
            ok_while_down = load.ok
            time.sleep(1.0)  # keep serving on a alone
            assert load.ok > ok_while_down
            b.start()  # back on the same port
            closed = wait_until(
                lambda: (
                    (s := backends_of(gw, "duo")["b"]).circuit == pb.CIRCUIT_STATE_CLOSED and s.healthy and s
                ),
                15,
                "b healthy again with its circuit closed",
                interval=0.05,
            )
            assert closed.consistent and not closed.ejected
            wait_until(lambda: b.stats()["requests"] > 10, 15, "traffic to return to b")
        assert load.failures == [], load.failures[:5]
        assert load.ok > 100
        log = gw.log()
        assert "backend b unhealthy" in log
        assert "backend b healthy again" in log  # its probe, at most a second after it is back
        assert "backend a circuit" not in log and "backend a unhealthy" not in log
    finally:
        gw.kill()
