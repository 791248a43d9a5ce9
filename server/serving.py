"""Runs a gateway in this process until a signal: shared by a lone gateway and each worker.

The first SIGTERM/SIGINT starts a graceful stop; a second exits at once.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable

from citadel.server.config import ConfigError
from citadel.server.lifecycle import StartupError
from citadel.server.resource_limits import raise_open_files_limit

log = logging.getLogger("citadel")


def handle_signals(stop: asyncio.Event, at_once: Callable[[], None] | None = None) -> None:
    """First signal: set `stop`. Second: `at_once` (default: exit 1 without cleaning up)."""

    def on_signal() -> None:
        if stop.is_set():
            log.warning("second signal: exiting at once")
            (at_once or (lambda: os._exit(1)))()
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)


async def run_gateway(gateway, on_ready: Callable[[object], Awaitable[None]], stop: asyncio.Event) -> int:
    """Start `gateway`, report its ports, serve until `stop`, stop gracefully. Exit code: 0 after a
    clean stop, 2 for a start-up error the operator must fix, 1 for anything else."""
    log.debug("open files limit %d", raise_open_files_limit())
    try:
        ports = await gateway.start()
    except (ConfigError, StartupError) as e:
        log.error("start-up failed: %s", e)
        print(f"citadel: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        log.exception("start-up failed: %s", e)
        return 1
    # What start-up made lives as long as the process: kept out of the cyclic collector's
    # passes, which under writes walked it over and over (each upserted vector makes several
    # dicts and lists): the servicer-to-engine path took 49-61 µs per vector in process, 44-45
    # frozen (issue 21).
    gc.freeze()
    await on_ready(ports)
    await stop.wait()
    log.info("shutting down (grace %.0f s)", gateway.settings.grace_seconds)
    await gateway.stop()
    return 0
