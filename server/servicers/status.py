"""AdminService.GetServiceStatus: the components of this replica and their states.

Any reader may ask whether the gateway is ready and which component is not. What a component
runs on (data dir, addresses, Redis and Qdrant URLs) and its last error are internal details:
for admins without a tenant only, and even then with URL credentials redacted.
"""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version

from citadel.admin.v1 import admin_service_pb2 as pb
from citadel.options.v1 import options_pb2
from citadel.server.auth.principal import ANONYMOUS, Principal
from citadel.server.lifecycle import Lifecycle
from citadel.server.redaction import redact_text
from citadel.server.servicers.convert import timestamp

STATES = {
    "stopped": pb.COMPONENT_STATE_STOPPED,
    "starting": pb.COMPONENT_STATE_STARTING,
    "running": pb.COMPONENT_STATE_RUNNING,
    "stopping": pb.COMPONENT_STATE_STOPPING,
    "failed": pb.COMPONENT_STATE_FAILED,
    "degraded": pb.COMPONENT_STATE_DEGRADED,
    "unavailable": pb.COMPONENT_STATE_UNAVAILABLE,
}


def gateway_version() -> str:
    try:
        return version("citadel-gateway")
    except PackageNotFoundError:
        return "unknown"


def status_response(
    lifecycle: Lifecycle, worker: int = 0, workers: int = 1, caller: Principal = ANONYMOUS
) -> pb.GetServiceStatusResponse:
    # The gateway's own internals belong to its operators: an admin of the whole gateway, not a
    # tenant's admin (who administers its tenant's collections, not the machine).
    internals = caller.may(options_pb2.ROLE_ADMIN) and not caller.tenant
    return pb.GetServiceStatusResponse(
        components=[
            pb.ComponentStatus(
                name=c.name,
                state=STATES[c.state],
                since=timestamp(c.since),
                last_error=redact_text(c.last_error) if internals else "",
                detail=redact_text(c.detail) if internals else "",
            )
            for c in lifecycle.components.values()
        ],
        ready=lifecycle.ready,
        uptime_seconds=time.time() - lifecycle.started_at,
        version=gateway_version(),
        worker=worker,
        workers=workers,
    )
