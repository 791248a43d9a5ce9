"""AdminService.GetServiceStatus: the components of this replica and their states."""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version

from citadel.admin.v1 import admin_service_pb2 as pb
from citadel.server.lifecycle import Lifecycle
from citadel.server.servicers.convert import timestamp

STATES = {
    "stopped": pb.COMPONENT_STATE_STOPPED,
    "starting": pb.COMPONENT_STATE_STARTING,
    "running": pb.COMPONENT_STATE_RUNNING,
    "stopping": pb.COMPONENT_STATE_STOPPING,
    "failed": pb.COMPONENT_STATE_FAILED,
}


def gateway_version() -> str:
    try:
        return version("citadel-gateway")
    except PackageNotFoundError:
        return "unknown"


def status_response(lifecycle: Lifecycle, worker: int = 0, workers: int = 1) -> pb.GetServiceStatusResponse:
    return pb.GetServiceStatusResponse(
        components=[
            pb.ComponentStatus(
                name=c.name,
                state=STATES[c.state],
                since=timestamp(c.since),
                last_error=c.last_error,
                detail=c.detail,
            )
            for c in lifecycle.components.values()
        ],
        ready=lifecycle.ready,
        uptime_seconds=time.time() - lifecycle.started_at,
        version=gateway_version(),
        worker=worker,
        workers=workers,
    )
