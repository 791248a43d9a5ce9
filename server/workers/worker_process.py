"""One worker under `citadel serve --workers N`: a whole gateway on the shared ports, using the
store, cache, buckets and queue the supervisor holds."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from citadel.server import logs
from citadel.server.config import Settings
from citadel.server.errors import ApiError
from citadel.server.workers.metrics import PUSH_SECONDS
from citadel.server.workers.proxy import HostConnection, Hosted

log = logging.getLogger("citadel.workers")


class _WorkerField(logging.Filter):
    """Every log line says which worker wrote it."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.index
        return True


def main(settings: Settings, host_socket: str, index: int) -> None:
    # Its own session: a terminal's Ctrl-C reaches the supervisor alone, which sends one SIGTERM.
    os.setsid()
    logs.configure(settings.log_level)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_WorkerField(index))
    sys.exit(asyncio.run(_run(settings, host_socket, index)))


async def _run(settings: Settings, host_socket: str, index: int) -> int:
    from citadel.server.gateway import Gateway  # the heavy imports, in the worker only
    from citadel.server.serving import handle_signals, run_gateway

    stop = asyncio.Event()
    handle_signals(stop)
    host = await HostConnection.open(host_socket)
    host.on_lost(stop.set)  # without the supervisor there is no store: stop serving
    try:
        names = await host.call("supervisor", "hosted")
    except ApiError as e:
        log.error("worker %d not started: %s", index, e.message)
        await host.close()
        return 2
    supervisor = Hosted(host, "supervisor")

    async def all_workers_metrics(own: bytes) -> bytes:
        return await supervisor.merged_metrics(index, own)

    shared = {name: Hosted(host, name) for name in names}
    gateway = Gateway(settings, shared=shared, metrics_view=all_workers_metrics, worker=index)
    pushing: asyncio.Task | None = None

    async def report(ports) -> None:
        nonlocal pushing
        await supervisor.worker_ready(index, os.getpid())
        pushing = asyncio.create_task(_push_metrics(gateway, supervisor, index))

    try:
        return await run_gateway(gateway, report, stop)
    finally:
        if pushing is not None:
            pushing.cancel()
        await host.close()


async def _push_metrics(gateway, supervisor: Hosted, index: int) -> None:
    """Keeps the supervisor's copy of this worker's metrics fresh for scrapes other workers answer."""
    while True:
        await asyncio.sleep(PUSH_SECONDS)
        try:
            await supervisor.push_metrics(index, gateway.metrics.render())
        except ApiError:
            return  # the supervisor is gone; the worker is stopping
