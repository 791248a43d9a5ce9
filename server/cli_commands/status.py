"""`citadel status`: the gateway replica's components (AdminService.GetServiceStatus).

Running and degraded components serve; the gateway is ready while every component does. Exit 5
names the components that do not (unavailable, failed, starting, stopping)."""

from __future__ import annotations

import argparse

from citadel.client import Client, admin
from citadel.server.cli_commands.common import (
    CommandFailed,
    Exit,
    add_command,
    enum_name,
    print_json,
    table,
    to_json,
    wants_json,
)
from citadel.server.cli_commands.progress import duration

SERVING = (admin.ComponentState.RUNNING, admin.ComponentState.DEGRADED)


def register(sub: argparse._SubParsersAction) -> None:
    add_command(
        sub, "status", "show each component of the gateway with its state; exit 5 when not ready", run
    )


def run(args: argparse.Namespace, client: Client) -> int:
    reply = client.admin.get_service_status(admin.GetServiceStatusRequest())
    if wants_json(args):
        print_json(to_json(reply))
    else:
        ready = "ready" if reply.ready else "NOT READY"
        answered = f" (worker {reply.worker} of {reply.workers} answered)" if reply.workers > 1 else ""
        print(f"citadel {reply.version}: {ready}, up {duration(reply.uptime_seconds)}{answered}")
        rows = [
            [
                c.name,
                enum_name(c.state),
                c.since.strftime("%Y-%m-%d %H:%M:%S") if c.since else "",
                c.detail,
                c.last_error,
            ]
            for c in reply.components
        ]
        print(table(rows, ["COMPONENT", "STATE", "SINCE", "DETAIL", "LAST ERROR"]))
    if not reply.ready:
        failing = [c.name for c in reply.components if c.state not in SERVING]
        raise CommandFailed(f"not ready: {', '.join(failing) or 'starting'}", Exit.UNAVAILABLE)
    return 0
