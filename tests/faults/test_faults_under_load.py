"""Faults during load, on two gateway replicas sharing one Redis and two model backends:
Redis killed and restarted, one model backend killed, one replica SIGKILLed and restarted.

Clients fail over to the other replica when one cannot answer (as any L4 balancer does), so
no operation may fail in the end; every acknowledged upsert must be in the store of the
replica that acknowledged it; each fault's recovery is measured in seconds."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass, field

import grpc
import pytest

from citadel.admin.v1 import admin_service_pb2 as admin
from citadel.admin.v1 import admin_service_pb2_grpc
from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.models.conftest import backend, write_config
from tests.support.gateway_process import GatewayProcess
from tests.support.model_server import ModelServer

DIM = 384
NO_CACHE = (("cache-control", "no-cache"),)
RECOVERY_LIMIT_SECONDS = 30
FAILOVER = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}


@dataclass
class Ledger:
    acked: dict[str, set[str]] = field(default_factory=lambda: {"a": set(), "b": set()})  # replica -> ids
    failures: list[str] = field(default_factory=list)
    failovers: int = 0
    done: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def vector(i: int) -> list[float]:
    v = [0.0] * DIM
    v[i % DIM] = 1.0
    return v


def wait_for(predicate, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.1)
    pytest.fail(f"no recovery within {timeout} s: {what}")


@pytest.fixture
def cluster(redis_server, tmp_path):
    servers = [ModelServer(tmp_path / "models", name=f"m{i}").launch() for i in (1, 2)]
    for s in servers:
        s.wait_ready()
    config = write_config(
        tmp_path / "citadel.toml",
        {"general": {"pattern": "realtime", "backends": [backend(s) for s in servers]}},
        default="general",
        health_interval_seconds=1,
        resilience={"breaker_failures": 2, "breaker_open_seconds": 2, "eject_failures": 2},
    )
    env = {
        "CITADEL_REDIS_URL": redis_server.url,
        "CITADEL_ACCESS_LOG": "false",
        "CITADEL_JOBS_LEASE_SECONDS": "3",
    }
    args = ["--insecure-no-auth", "--config", str(config)]
    replicas = {name: GatewayProcess(tmp_path / name, env=env, args=args).start() for name in ("a", "b")}
    for proc in replicas.values():
        proc.stub().CreateCollection(
            pb.CreateCollectionRequest(
                collection=resources_pb2.Collection(name="faults", dimension=DIM, distance=1)
            )
        )
    yield replicas, servers, redis_server
    for proc in replicas.values():
        proc.kill()
    for s in servers:
        s.kill()


def call_with_failover(replicas: dict, order: list[str], ledger: Ledger, op) -> None:
    for attempt, name in enumerate(order):
        proc = replicas[name]
        try:
            op(name, proc.stub())
            with ledger.lock:
                ledger.done += 1
                ledger.failovers += attempt
            return
        except grpc.RpcError as e:
            # UNAVAILABLE: the replica is gone; CANCELLED: the harness closed its channel to restart it.
            if e.code() not in FAILOVER or attempt == len(order) - 1:
                with ledger.lock:
                    ledger.failures.append(f"{name}: {e.code().name} {e.details()}")
                return
        except (RuntimeError, ValueError) as e:  # the channel of a replica being restarted
            if attempt == len(order) - 1:
                with ledger.lock:
                    ledger.failures.append(f"{name}: {e}")
                return


def test_faults_under_load(cluster):
    replicas, (m1, m2), redis = cluster
    ledger = Ledger()
    stop = threading.Event()
    ids = itertools.count()

    def client(n: int) -> None:
        order = ["a", "b"] if n % 2 == 0 else ["b", "a"]
        k = 0
        while not stop.is_set():
            k += 1
            kind = k % 3
            if kind == 0:
                vid = f"f{next(ids)}"

                def upsert(name, stub, vid=vid):
                    stub.UpsertVectors(
                        pb.UpsertVectorsRequest(
                            collection="faults",
                            vectors=[resources_pb2.Vector(id=vid, embedding=vector(int(vid[1:])))],
                        ),
                        timeout=10,
                    )
                    with ledger.lock:
                        ledger.acked[name].add(vid)

                call_with_failover(replicas, order, ledger, upsert)
            elif kind == 1:
                call_with_failover(
                    replicas,
                    order,
                    ledger,
                    lambda name, stub, k=k: stub.SearchVectors(
                        pb.SearchVectorsRequest(collection="faults", query_vector=vector(k), limit=5),
                        timeout=10,
                    ),
                )
            else:
                text = f"fault load {uuid.uuid4().hex}"
                call_with_failover(
                    replicas,
                    order,
                    ledger,
                    lambda name, stub, text=text: stub.GenerateEmbedding(
                        pb.GenerateEmbeddingRequest(text=text), metadata=NO_CACHE, timeout=10
                    ),
                )

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    recovery: dict[str, float] = {}
    try:
        time.sleep(3)
        # 1. Redis dies and comes back: the cache is skipped meanwhile, then used again.
        redis.kill()
        time.sleep(3)
        redis.restart()
        stats = admin_service_pb2_grpc.AdminServiceStub(replicas["a"].channel())
        errors_then = stats.GetCacheStats(admin.GetCacheStatsRequest()).backend_errors

        def cache_back() -> bool:
            replicas["a"].stub().ListCollections(pb.ListCollectionsRequest())
            before = stats.GetCacheStats(admin.GetCacheStatsRequest()).backend_errors
            replicas["a"].stub().GetCollection(pb.GetCollectionRequest(name="faults"))
            return stats.GetCacheStats(admin.GetCacheStatsRequest()).backend_errors == before

        recovery["redis restart → cache in use again"] = wait_for(
            cache_back, RECOVERY_LIMIT_SECONDS, "cache on Redis"
        )
        assert errors_then > 0  # it did notice Redis was gone

        # 2. A model backend dies: its circuit opens on both replicas and embeds go to m2.
        m1.kill()
        killed = time.monotonic()

        def m1_out(proc) -> bool:
            models = proc.stub().ListModels(pb.ListModelsRequest()).models
            m1_state = next(b for m in models if m.name == "general" for b in m.backends if b.id == "m1")
            return m1_state.circuit == pb.CIRCUIT_STATE_OPEN or m1_state.ejected or not m1_state.healthy

        wait_for(lambda: m1_out(replicas["a"]), RECOVERY_LIMIT_SECONDS, "m1 taken out of rotation")
        recovery["model backend killed → taken out of rotation"] = time.monotonic() - killed

        # 3. A replica is SIGKILLed; clients fail over; it restarts on its data.
        replicas["b"].kill()
        time.sleep(2)
        killed = time.monotonic()
        replicas["b"].start()
        recovery["replica SIGKILLed → restarted and ready"] = time.monotonic() - killed
        time.sleep(2)
    finally:
        stop.set()
        for t in threads:
            t.join(30)

    print(
        "recovery (s):",
        {k: round(v, 2) for k, v in recovery.items()},
        "operations:",
        ledger.done,
        "failovers:",
        ledger.failovers,
    )
    assert ledger.failures == [], ledger.failures[:5]
    assert ledger.done > 100 and ledger.failovers > 0
    assert all(seconds < RECOVERY_LIMIT_SECONDS for seconds in recovery.values()), recovery
    # Nothing lost: every acknowledged upsert is in the store of the replica that acknowledged it.
    for name, acked in ledger.acked.items():
        stub = replicas[name].stub()
        stored = set()
        token = ""
        while True:
            page = stub.ScrollVectors(
                pb.ScrollVectorsRequest(collection="faults", page_size=1000, page_token=token),
                metadata=NO_CACHE,
            )
            stored |= {v.id for v in page.vectors}
            token = page.next_page_token
            if not token:
                break
        missing = acked - stored
        assert not missing, (
            f"replica {name} lost {len(missing)} acknowledged vectors, e.g. {sorted(missing)[:5]}"
        )
    assert m2.stats()["requests"] > 0
