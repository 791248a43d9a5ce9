"""Prometheus metrics of one gateway, on a registry of its own (so several gateways can live
in one process, as in tests). Served at /metrics on the HTTP port."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from citadel.vector.v1.vector_service_pb2 import CircuitState

# Latency buckets from 0.25 ms to 10 s: searches land in the low milliseconds.
_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple, object] = {}
        r = self.registry
        self.requests = Counter(
            "citadel_requests",
            "RPCs handled, by method, protocol and status code.",
            ["method", "protocol", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "citadel_request_duration_seconds",
            "RPC latency.",
            ["method", "protocol"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("citadel_requests_in_flight", "RPCs being handled.", registry=r)
        # Kept as a plain count by the telemetry interceptor (on the event loop) and read at
        # scrape time: a Gauge's inc()/dec() take its lock twice per call.
        self.calls_in_flight = 0
        self.in_flight.set_function(lambda: self.calls_in_flight)
        self.cache = Counter(
            "citadel_cache_lookups",
            "Response cache lookups by method and result.",
            ["method", "result"],
            registry=r,
        )
        self.cache_errors = Counter(
            "citadel_cache_backend_errors", "Cache backend failures (requests served uncached).", registry=r
        )
        self.rate_limited = Counter(
            "citadel_rate_limited", "Calls rejected by a rate limit, by bucket kind.", ["bucket"], registry=r
        )
        self.rate_limit_errors = Counter(
            "citadel_rate_limit_backend_errors",
            "Rate-limit backend failures (calls let through).",
            registry=r,
        )
        self.auth_failures = Counter(
            "citadel_auth_failures",
            "Calls refused by authentication or authorization.",
            ["reason"],
            registry=r,
        )

        self.job_items = Counter(
            "citadel_job_items", "Batch job items processed, by result.", ["result"], registry=r
        )
        self.job_queue_depth = Gauge(
            "citadel_job_queue_depth", "Batch chunks waiting or in progress.", registry=r
        )

    def child(self, metric, *labels: str):
        """`metric.labels(*labels)`, looked up once per label set: prometheus_client's labels()
        validates and joins its arguments under a lock on every call (~1.5 µs), and the hot
        path asks for the same few children on every request. Children are never removed."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def watch_models(self, router) -> None:
        """Backend health, circuit state and load of the model router, read at scrape time."""
        self.registry.register(_ModelCollector(router))

    def watch_components(self, lifecycle) -> None:
        """Each component's state (store, redis, models, jobs, grpc, http), read at scrape time."""
        self.registry.register(_ComponentCollector(lifecycle))

    def watch_indexes(self, progress) -> None:
        """Each collection's vectors and how many of them its index covers, read at scrape
        time from `progress()`: (name, vectors, IndexProgress) per collection."""
        self.registry.register(_IndexCollector(progress))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ModelCollector(Collector):
    CIRCUIT = {"CIRCUIT_STATE_CLOSED": 0, "CIRCUIT_STATE_HALF_OPEN": 1, "CIRCUIT_STATE_OPEN": 2}

    def __init__(self, router) -> None:
        self._router = router

    def describe(self):
        return []  # collected dynamically; no fixed description at registration

    def collect(self):
        labels = ["model", "backend"]
        healthy = GaugeMetricFamily(
            "citadel_model_backend_healthy", "1 when the backend passed its last health check.", labels=labels
        )
        circuit = GaugeMetricFamily(
            "citadel_model_backend_circuit", "Circuit state: 0 closed, 1 half-open, 2 open.", labels=labels
        )
        in_flight = GaugeMetricFamily(
            "citadel_model_backend_in_flight", "Requests in flight to the backend.", labels=labels
        )
        latency = GaugeMetricFamily(
            "citadel_model_backend_latency_ewma_seconds", "Latency moving average.", labels=labels
        )
        ejected = GaugeMetricFamily(
            "citadel_model_backend_ejected", "1 while outlier detection holds it out.", labels=labels
        )
        for model in self._router.list_models().models:
            for b in model.backends:
                key = [model.name, b.id]
                healthy.add_metric(key, 1.0 if b.healthy else 0.0)
                circuit.add_metric(key, self.CIRCUIT.get(CircuitState.Name(b.circuit), 0))
                in_flight.add_metric(key, b.in_flight)
                latency.add_metric(key, b.latency_ewma_ms / 1000)
                ejected.add_metric(key, 1.0 if b.ejected else 0.0)
        yield from (healthy, circuit, in_flight, latency, ejected)


class _ComponentCollector(Collector):
    STATES = ("stopped", "starting", "running", "degraded", "unavailable", "stopping", "failed")

    def __init__(self, lifecycle) -> None:
        self._lifecycle = lifecycle

    def describe(self):
        return []

    def collect(self):
        # A state set (as kube-state-metrics does): 1 for the state a component is in, 0 for the rest.
        family = GaugeMetricFamily(
            "citadel_component_state",
            "1 for the state each component (store, redis, models, jobs, grpc, http) is in.",
            labels=["component", "state"],
        )
        for c in list(self._lifecycle.components.values()):
            for state in self.STATES:
                family.add_metric([c.name, state], 1.0 if c.state == state else 0.0)
        yield family


class _IndexCollector(Collector):
    STATES = ("indexed", "pending", "building", "failed")

    def __init__(self, progress) -> None:
        self._progress = progress

    def describe(self):
        return []

    def collect(self):
        vectors = GaugeMetricFamily(
            "citadel_collection_vectors", "Vectors stored in each collection.", labels=["collection"]
        )
        indexed = GaugeMetricFamily(
            "citadel_collection_indexed_vectors",
            "Vectors of each collection searchable through an HNSW graph (the rest are scanned exactly).",
            labels=["collection"],
        )
        state = GaugeMetricFamily(
            "citadel_collection_indexing_state",
            "1 for the indexing state each collection is in (indexed, pending, building, failed).",
            labels=["collection", "state"],
        )
        for name, count, progress in self._progress():
            vectors.add_metric([name], count)
            indexed.add_metric([name], progress.indexed_vectors)
            for s in self.STATES:
                state.add_metric([name, s], 1.0 if progress.state == s else 0.0)
        yield from (vectors, indexed, state)
