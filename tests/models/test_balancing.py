"""Each load-balancing strategy distributes as specified, counted by the test model servers
themselves (health probes are counted apart), and ListModels reports in-flight and latency."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.models.conftest import backend, backends_of, embed, start_gateway

N = 60


@pytest.fixture(scope="module")
def trio(module_servers):
    return module_servers.many("a", "b", "c")


@pytest.fixture(scope="module")
def gw(trio, tmp_path_factory):
    a, b, c = trio
    models = {
        name: {"strategy": name, "backends": [backend(a), backend(b), backend(c)]}
        for name in ("round_robin", "least_connections", "p2c")
    }
    models["weighted"] = {
        "strategy": "weighted",
        "backends": [backend(a, weight=1), backend(b, weight=2), backend(c, weight=3)],
    }
    models["mixed"] = {  # one model over all three wire protocols
        "strategy": "round_robin",
        "backends": [backend(a, "ollama"), backend(b, "openai"), backend(c, "tei")],
    }
    proc = start_gateway(tmp_path_factory.mktemp("balancing"), models, default="p2c")
    yield proc
    proc.kill()


def counts(trio) -> dict[str, int]:
    return {s.name: s.stats()["requests"] for s in trio}


def sequential(gw, model: str, n: int = N) -> None:
    stub = gw.stub()
    for i in range(n):
        embed(stub, f"{model} request {i} {uuid.uuid4().hex[:6]}", model)


def in_parallel(gw, model: str, n: int, workers: int = 4) -> None:
    stub = gw.stub()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda i: embed(stub, f"{model} load {i} {uuid.uuid4().hex[:6]}", model), range(n)))


def measured(trio, fn) -> dict[str, int]:
    for s in trio:
        s.reset()
    fn()
    return counts(trio)


def test_round_robin_takes_turns(gw, trio):
    assert measured(trio, lambda: sequential(gw, "round_robin")) == {"a": 20, "b": 20, "c": 20}


def test_weighted_honours_weights(gw, trio):
    assert measured(trio, lambda: sequential(gw, "weighted")) == {"a": 10, "b": 20, "c": 30}


def test_one_model_over_ollama_openai_and_tei(gw, trio):
    for s in trio:
        s.reset()
    sequential(gw, "mixed", 9)
    assert {s.name: s.stats()["by_route"] for s in trio} == {
        "a": {"ollama": 3},
        "b": {"openai": 3},
        "c": {"tei": 3},
    }


@pytest.mark.parametrize("model", ["least_connections", "p2c"])
def test_in_flight_aware_strategies_avoid_a_slow_backend(model, gw, trio):
    slow = trio[2]
    slow.control(delay_ms=300)
    seen_in_flight = []
    stop = threading.Event()

    def watch():
        while not stop.is_set() and len(seen_in_flight) < 200:
            seen_in_flight.append(backends_of(gw, model)["c"].in_flight)
            stop.wait(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        got = measured(trio, lambda: in_parallel(gw, model, 80))
    finally:
        stop.set()
        watcher.join()
        slow.control(delay_ms=0)
    assert sum(got.values()) == 80
    assert got["c"] < 80 * 0.2, got  # round robin would give it a third
    # Both fast backends take part; their split depends on timing (least connections breaks
    # ties in order), so only starvation is a failure (CI saw 22/54/4 on a loaded machine).
    assert got["a"] > 80 * 0.2 and got["b"] > 80 * 0.2, got
    assert max(seen_in_flight) >= 1  # ListModels shows the request the slow one holds
    state = backends_of(gw, model)
    assert state["c"].latency_ewma_ms > 250 > state["a"].latency_ewma_ms


def test_round_robin_ignores_slowness(gw, trio):
    trio[2].control(delay_ms=100)
    try:
        got = measured(trio, lambda: in_parallel(gw, "round_robin", 30, workers=3))
    finally:
        trio[2].control(delay_ms=0)
    assert got == {"a": 10, "b": 10, "c": 10}
