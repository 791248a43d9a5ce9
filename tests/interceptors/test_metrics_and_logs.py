"""Prometheus metrics on the HTTP port and one structured log line per call."""

from __future__ import annotations

import json
import time
import urllib.request

import grpc
import pytest

from citadel.vector.v1 import vector_service_pb2 as pb


def scrape(proc) -> str:
    with urllib.request.urlopen(f"{proc.http_url}/metrics", timeout=10) as r:
        assert r.status == 200
        return r.read().decode()


def test_requests_latency_and_cache_metrics(gateway):
    stub = gateway.stub()
    stub.ListCollections(pb.ListCollectionsRequest())
    with pytest.raises(grpc.RpcError):
        stub.GetCollection(pb.GetCollectionRequest(name="not-there-metrics"))
    text = scrape(gateway)
    assert (
        'citadel_requests_total{code="OK",method="/citadel.vector.v1.VectorService/ListCollections",protocol="grpc"}'
        in text
    )
    assert 'code="NOT_FOUND",method="/citadel.vector.v1.VectorService/GetCollection"' in text
    assert (
        'citadel_request_duration_seconds_bucket{le="0.005",method="/citadel.vector.v1.VectorService/ListCollections"'
        in text
    )
    assert "citadel_cache_lookups_total" in text


def test_access_log_is_structured(gateway):
    gateway.stub().ListCollections(pb.ListCollectionsRequest(), metadata=[("x-request-id", "log-check-1")])
    # The line is written on the gateway loop's turn after the reply, so it may land just after.
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in gateway.log().splitlines() if line.startswith("{")]
        mine = [entry for entry in lines if entry.get("request_id") == "log-check-1"]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert mine, "no access log line for the call"
    entry = mine[0]
    assert entry["method"] == "/citadel.vector.v1.VectorService/ListCollections"
    assert (entry["protocol"], entry["code"]) == ("grpc", "OK")
    assert entry["duration_ms"] >= 0


def test_component_metrics(gateway):
    text = scrape(gateway)
    assert 'citadel_model_backend_healthy{backend=' in text
    assert "citadel_model_backend_circuit{" in text
    assert "citadel_job_queue_depth " in text
    assert "citadel_job_items_total" in text or "citadel_job_items_created" in text or "# HELP citadel_job_items" in text


def test_grafana_dashboard_uses_metrics_the_gateway_exposes(gateway):
    import re
    from pathlib import Path

    dashboard = json.loads(
        (Path(__file__).resolve().parents[2] / "server" / "config_examples" / "grafana-dashboard.json").read_text()
    )
    exposed = set()
    for name, kind in re.findall(r"^# TYPE (citadel_\w+) (\w+)", scrape(gateway), re.M):
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(kind, [""])
        exposed |= {name.removesuffix("_total") + suffix for suffix in suffixes}
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for name in re.findall(r"citadel_\w+", target["expr"]):
                assert name in exposed, f"{panel['title']}: {name} is not exposed"
