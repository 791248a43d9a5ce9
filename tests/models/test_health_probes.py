"""Active health checks on the default catalog: the nine seed models all run on the one
in-process local model, so one probe embedding a round answers for all nine backends. And a
real model server killed and restarted, with and without load: health shows it within seconds."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from citadel.admin.v1 import admin_service_pb2 as admin
from citadel.admin.v1 import admin_service_pb2_grpc
from citadel.server.models.catalog import SEED_MODELS, Catalog, local_catalog
from citadel.server.models.router import ModelRouter
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.models.conftest import backend, backends_of, code_of, embed, start_gateway


@pytest.mark.asyncio
async def test_one_probe_a_round_answers_for_every_local_backend() -> None:
    router = ModelRouter(Catalog(default="general", models=local_catalog()))
    try:
        backends = [b for pool in router.pools.values() for b in pool.backends]
        assert len(backends) == len(SEED_MODELS) == 9

        await router.health.check_all()
        first = backends[0].probe
        assert first is not None and first.shape == (384,)
        assert all(b.healthy for b in backends)
        # One array underneath: one embed call answered every backend's probe.
        assert all(np.shares_memory(b.probe, first) for b in backends)
        assert all(pool.dimension == 384 for pool in router.pools.values())

        await router.health.check_all()  # a new round embeds again
        second = backends[0].probe
        assert not np.shares_memory(second, first)
        assert np.allclose(second, first, atol=1e-5)
        assert all(np.shares_memory(b.probe, second) for b in backends)
    finally:
        await router.close()


WITHIN_SECONDS = 10.0  # the issue asks for 2 s (printed per step, ~0.01-0.9 s measured); room for a loaded 2-core machine


class BoundedLoad:
    """GenerateEmbedding on `model` from one thread: at most `calls` calls, `seconds` long."""

    def __init__(self, gw, model: str, calls: int = 200, seconds: float = 10.0) -> None:
        self._stub, self._model = gw.stub(), model
        self._calls, self._seconds = calls, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0

    def _run(self) -> None:
        until = time.monotonic() + self._seconds
        while not self._stop.is_set() and self.sent < self._calls and time.monotonic() < until:
            self.sent += 1
            code_of(lambda: embed(self._stub, f"load {self.sent}", self._model, timeout=5))
            time.sleep(0.02)

    def __enter__(self) -> BoundedLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(15)


def models_component(gw) -> admin.ComponentStatus:
    reply = admin_service_pb2_grpc.AdminServiceStub(gw.channel()).GetServiceStatus(
        admin.GetServiceStatusRequest(), timeout=10
    )
    return next(c for c in reply.components if c.name == "models")


def seconds_until(predicate, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > WITHIN_SECONDS:
            pytest.fail(f"{what}: not within {WITHIN_SECONDS} s")
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    print(f"{what}: {elapsed:.2f} s")
    return elapsed


def test_dead_backend_shows_unhealthy_within_seconds_with_and_without_load(servers, tmp_path):
    """Default health interval and breaker: the probe runs while the circuit is open, a call
    that cannot connect marks the backend unhealthy at once, and the models component is
    degraded while a model has no healthy backend."""
    a = servers("a")
    gw = start_gateway(tmp_path, {"solo": {"backends": [backend(a)]}}, default="solo")
    try:
        seconds_until(lambda: backends_of(gw, "solo")["a"].healthy, "first probe")
        assert models_component(gw).state == admin.COMPONENT_STATE_RUNNING

        with BoundedLoad(gw, "solo") as load:
            seconds_until(lambda: load.sent > 10, "load running")
            a.kill()
            seconds_until(lambda: not backends_of(gw, "solo")["a"].healthy, "killed under load -> unhealthy")
            seconds_until(
                lambda: models_component(gw).state == admin.COMPONENT_STATE_DEGRADED,
                "killed under load -> models degraded",
            )
            component = models_component(gw)
            assert "no healthy backend: solo" in component.detail, component.detail
            assert component.last_error.startswith("no healthy backend for solo: a ("), component.last_error
            a.start()  # back on the same port, the circuit most likely open
            seconds_until(lambda: backends_of(gw, "solo")["a"].healthy, "restarted under load -> healthy")
            seconds_until(
                lambda: models_component(gw).state == admin.COMPONENT_STATE_RUNNING,
                "restarted under load -> models running",
            )
        assert load.sent <= 200

        a.kill()  # no traffic at all: the probes alone
        seconds_until(lambda: not backends_of(gw, "solo")["a"].healthy, "killed idle -> unhealthy")
        seconds_until(
            lambda: models_component(gw).state == admin.COMPONENT_STATE_DEGRADED,
            "killed idle -> models degraded",
        )
        assert gw.stub().ListModels(pb.ListModelsRequest(), timeout=10)  # the gateway serves on
        a.start()
        seconds_until(lambda: backends_of(gw, "solo")["a"].healthy, "restarted idle -> healthy")
        seconds_until(
            lambda: models_component(gw).state == admin.COMPONENT_STATE_RUNNING,
            "restarted idle -> models running",
        )
        log = gw.log()
        assert log.count("models degraded: ") == 2 and log.count("models running again after ") == 2, log
    finally:
        gw.kill()
