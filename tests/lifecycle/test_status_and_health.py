"""Components report their state through GetServiceStatus, grpc.health.v1 and /readyz."""

from __future__ import annotations

import json
import urllib.request

from grpc_health.v1 import health_pb2, health_pb2_grpc

from citadel.admin.v1 import admin_service_pb2 as admin
from citadel.admin.v1 import admin_service_pb2_grpc

ORDER = ["store", "models", "jobs", "grpc", "http"]


def test_status_lists_components_in_start_order(gateway):
    reply = admin_service_pb2_grpc.AdminServiceStub(gateway.channel()).GetServiceStatus(
        admin.GetServiceStatusRequest()
    )
    assert [c.name for c in reply.components] == ORDER
    assert all(c.state == admin.COMPONENT_STATE_RUNNING for c in reply.components)
    assert reply.ready and reply.uptime_seconds > 0 and reply.version
    assert reply.components[0].since.seconds > 0
    assert "engine in" in reply.components[0].detail


def test_health_per_component_and_whole(gateway):
    stub = health_pb2_grpc.HealthStub(gateway.channel())
    for service in ["", *ORDER, "citadel.vector.v1.VectorService"]:
        assert (
            stub.Check(health_pb2.HealthCheckRequest(service=service)).status
            == health_pb2.HealthCheckResponse.SERVING
        )


def test_readyz_and_rest_status(gateway):
    with urllib.request.urlopen(f"{gateway.http_url}/readyz", timeout=10) as r:
        body = json.loads(r.read())
    assert body["ready"] is True and body["components"]["store"] == "running"
    with urllib.request.urlopen(f"{gateway.http_url}/v1/status", timeout=10) as r:
        status = json.loads(r.read())
    assert [c["name"] for c in status["components"]] == ORDER
