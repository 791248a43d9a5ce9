"""TelemetryInterceptor in process: its cached label children count what labels() counted, and
the access line is written (with every field) exactly when its logger would write it."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc
import pytest

from citadel.server.chain import Call
from citadel.server.descriptors import SERVICES
from citadel.server.errors import ApiError
from citadel.server.interceptors.telemetry import TelemetryInterceptor
from citadel.server.methods import method_specs
from citadel.server.metrics import Metrics

SPECS = {s.name: s for s in method_specs(SERVICES) if s.service == "citadel.vector.v1.VectorService"}


def _run(telemetry: TelemetryInterceptor, name: str, protocol: str = "grpc", fail: ApiError | None = None):
    async def handler(call, request):
        if fail is not None:
            raise fail
        return "reply"

    call = Call(method=SPECS[name], protocol=protocol, metadata={"x": "y"})
    with contextlib.suppress(ApiError):  # a failing call is recorded too, then re-raised
        asyncio.run(telemetry(call, None, handler))
    return call


def _value(metrics: Metrics, name: str, **labels) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_counts_and_latency_per_method_protocol_and_code():
    metrics = Metrics()
    telemetry = TelemetryInterceptor(metrics, log_every_call=False)
    for _ in range(3):
        _run(telemetry, "SearchVectors")
    _run(telemetry, "SearchVectors", protocol="rest")
    _run(telemetry, "SearchVectors", fail=ApiError(grpc.StatusCode.NOT_FOUND, "gone"))
    _run(telemetry, "GetVector")
    path = "/citadel.vector.v1.VectorService/SearchVectors"
    requests = "citadel_requests_total"
    assert _value(metrics, requests, method=path, protocol="grpc", code="OK") == 3
    assert _value(metrics, requests, method=path, protocol="rest", code="OK") == 1
    assert _value(metrics, requests, method=path, protocol="grpc", code="NOT_FOUND") == 1
    get = "/citadel.vector.v1.VectorService/GetVector"
    assert _value(metrics, requests, method=get, protocol="grpc", code="OK") == 1
    count = "citadel_request_duration_seconds_count"
    assert _value(metrics, count, method=path, protocol="grpc") == 4
    assert _value(metrics, count, method=path, protocol="rest") == 1
    assert _value(metrics, "citadel_requests_in_flight") == 0


def test_in_flight_counts_calls_under_way():
    metrics = Metrics()
    telemetry = TelemetryInterceptor(metrics, log_every_call=False)
    seen = []

    async def handler(call, request):
        seen.append(metrics.registry.get_sample_value("citadel_requests_in_flight"))
        return "reply"

    asyncio.run(telemetry(Call(method=SPECS["SearchVectors"], protocol="grpc"), None, handler))
    assert seen == [1.0]
    assert metrics.registry.get_sample_value("citadel_requests_in_flight") == 0
    assert b"citadel_requests_in_flight 0.0" in metrics.render()


def test_recorded_on_the_loops_next_turn():
    metrics = Metrics()
    telemetry = TelemetryInterceptor(metrics, log_every_call=False)
    path = "/citadel.vector.v1.VectorService/SearchVectors"

    async def handler(call, request):
        return "reply"

    async def run():
        await telemetry(Call(method=SPECS["SearchVectors"], protocol="grpc"), None, handler)
        await asyncio.sleep(0)  # anything handled after the call (a scrape) comes after this
        return _value(metrics, "citadel_requests_total", method=path, protocol="grpc", code="OK")

    assert asyncio.run(run()) == 1


def test_metrics_child_is_the_labelled_child():
    metrics = Metrics()
    child = metrics.child(metrics.cache, "/a/B", "bypass")
    assert child is metrics.child(metrics.cache, "/a/B", "bypass")
    child.inc()
    metrics.cache.labels("/a/B", "bypass").inc()
    assert _value(metrics, "citadel_cache_lookups_total", method="/a/B", result="bypass") == 2


@pytest.mark.parametrize("log_every_call", [True, False])
def test_access_line_when_the_logger_writes_it(caplog, log_every_call):
    telemetry = TelemetryInterceptor(Metrics(), log_every_call=log_every_call)
    with caplog.at_level(logging.INFO, logger="citadel.access"):
        ok = _run(telemetry, "SearchVectors")
        failed = _run(telemetry, "SearchVectors", fail=ApiError(grpc.StatusCode.INVALID_ARGUMENT, "bad"))
    lines = {r.request_id: r for r in caplog.records if r.name == "citadel.access"}
    assert (ok.request_id in lines) is log_every_call
    record = lines[failed.request_id]  # a failed call is always logged
    assert record.method == "/citadel.vector.v1.VectorService/SearchVectors"
    assert (record.protocol, record.code, record.subject) == ("grpc", "INVALID_ARGUMENT", "")
    assert record.duration_ms >= 0


def test_no_access_line_above_info(caplog):
    telemetry = TelemetryInterceptor(Metrics(), log_every_call=True)
    with caplog.at_level(logging.WARNING, logger="citadel.access"):
        _run(telemetry, "SearchVectors")
        _run(telemetry, "SearchVectors", fail=ApiError(grpc.StatusCode.INVALID_ARGUMENT, "bad"))
    assert not [r for r in caplog.records if r.name == "citadel.access"]
