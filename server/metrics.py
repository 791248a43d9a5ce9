"""Prometheus metrics of one gateway, on a registry of its own (so several gateways can live
in one process, as in tests). Served at /metrics on the HTTP port."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Latency buckets from 0.25 ms to 10 s: searches land in the low milliseconds.
_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
