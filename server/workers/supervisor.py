"""`citadel serve --workers N`: N gateway processes on the same ports, one supervisor.

One Python process uses one core, so the gRPC server, the HTTP adapters and the interceptor
chain run in N worker processes, each a whole gateway listening on the same gRPC and HTTP
ports with SO_REUSEPORT: the kernel spreads new connections across them. What must exist
once — the embedded store, and without Redis the cache, rate-limit buckets and job queue —
lives in this supervisor and is served to the workers over a private Unix socket (host.py).

Start-up: shared state → ports reserved (so port 0 means the same free port for every
worker) → workers started; ready when every worker is. A worker that fails to start fails
start-up; one that dies later is restarted (at most MAX_RESTARTS in RESTART_WINDOW seconds).
Shutdown (SIGTERM/SIGINT): each worker gets one SIGTERM and drains as a lone gateway does;
then the shared state is closed. Workers run in their own session, so a Ctrl-C in a terminal
reaches only the supervisor, and a second signal kills them at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health

from citadel.server import ports, redis_client
from citadel.server.config import ConfigError, Settings
from citadel.server.errors import ApiError
from citadel.server.lifecycle import Lifecycle, StartupError
from citadel.server.ready_file import write_ready_file
from citadel.server.serving import handle_signals
from citadel.server.workers import worker_process
from citadel.server.workers.host import Host
from citadel.server.workers.metrics import SupervisorMetrics, merge
from citadel.server.workers.shared import close_shared, open_shared

log = logging.getLogger("citadel.workers")

MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
POLL_SECONDS = 0.1


class Supervisor:
    def __init__(self, settings: Settings, ready_file: Path | None) -> None:
        self.settings = settings
        self.ready_file = ready_file
        self._processes: dict[int, multiprocessing.process.BaseProcess] = {}
        self._ready: dict[int, int] = {}  # worker index -> pid, once it reports ready
        self._restarts: list[float] = []
        self._expositions: dict[int, bytes] = {}  # worker index -> its metrics, as last pushed
        self.metrics = SupervisorMetrics()
        self._spawn = multiprocessing.get_context("spawn")
        self._shared: dict[str, object] = {}
        self._shared_ready = asyncio.Event()
        self._shared_failed = False

    # -- called by workers through the host ---------------------------------------------

    async def hosted(self) -> list[str]:
        """The names of the shared objects, once they are open (workers start before that)."""
        await self._shared_ready.wait()
        if self._shared_failed:
            raise ApiError(grpc.StatusCode.UNAVAILABLE, "the supervisor failed to start; see its log")
        return sorted(self._shared)

    async def worker_ready(self, index: int, pid: int) -> None:
        self._ready[index] = pid
        self.metrics.workers.set(len(self._ready))
        log.info("worker %d ready (pid %d)", index, pid)

    async def push_metrics(self, index: int, exposition: bytes) -> None:
        self._expositions[index] = exposition

    async def merged_metrics(self, index: int, exposition: bytes) -> bytes:
        self._expositions[index] = exposition
        return merge(self._expositions, self.metrics.registry)

    # -- the supervisor's own run ---------------------------------------------------------

    async def run(self) -> int:
        stop = asyncio.Event()
        handle_signals(stop, at_once=self._exit_at_once)
        self._host = Host({"supervisor": self})
        self._socket = await self._host.start()
        try:
            return await self._run(stop)
        except (ConfigError, StartupError) as e:
            log.error("start-up failed: %s", e)
            print(f"citadel: {e}", file=sys.stderr)
            await self._stop_workers()
            return 2
        finally:
            await self._host.close()
            await close_shared(self._shared)
            log.info("citadel stopped")

    async def _run(self, stop: asyncio.Event) -> int:
        life = Lifecycle(health.aio.HealthServicer(), self.settings.startup_timeout_seconds)
        settings = await self._resolve_redis(life)
        reserved = [_reserve(settings.host, settings.grpc_port, "grpc_port")]
        try:
            reserved.append(_reserve(settings.host, settings.http_port, "http_port"))
            ports = [sock.getsockname()[1] for sock in reserved]
            settings = dataclasses.replace(settings, grpc_port=ports[0], http_port=ports[1])
            # Workers import the gateway (the slow part of start-up) while the store opens here.
            for index in range(settings.workers):
                self._start_worker(settings, index)
            await self._open_shared(life, settings)
            failed = await self._wait_ready(settings, stop)
        finally:
            for sock in reserved:
                sock.close()  # every worker has bound by now (or start-up is over)
        if failed:
            raise StartupError(failed)
        if stop.is_set():
            await self._stop_workers()
            return 0
        if self.ready_file is not None:
            write_ready_file(self.ready_file, ports[0], ports[1])
        log.info(
            "citadel ready: %d workers, gRPC on %s:%d, HTTP on %s:%d",
            settings.workers,
            settings.host,
            ports[0],
            settings.host,
            ports[1],
        )
        code = await self._watch(settings, stop)
        await self._stop_workers()
        return code

    async def _resolve_redis(self, life: Lifecycle) -> Settings:
        """The settings workers get: without Redis when it is optional and unreachable."""
        s = self.settings
        if not s.redis_url:
            return s
        # Workers connect themselves; this only decides whether Redis is in use at all.
        client = await life.start(
            "redis",
            redis_client.connect(s.redis_url),
            redis_client.redacted(s.redis_url),
            not s.redis_optional,
        )
        if client is None:
            log.warning("Redis unreachable and redis.optional: the supervisor holds cache, limits and queue")
            return dataclasses.replace(s, redis_url="")
        await client.aclose()
        return s

    async def _open_shared(self, life: Lifecycle, settings: Settings) -> None:
        try:
            self._shared = await life.start(
                "shared state", open_shared(settings), "store, cache, limits and queue"
            )
            self._host.add(self._shared)
        except BaseException:
            self._shared_failed = True
            raise
        finally:
            self._shared_ready.set()

    def _start_worker(self, settings: Settings, index: int) -> None:
        process = self._spawn.Process(
            target=worker_process.main,
            args=(settings, str(self._socket), index),
            name=f"citadel-worker-{index}",
        )
        process.start()
        self._processes[index] = process
        self._ready.pop(index, None)
        self.metrics.workers.set(len(self._ready))

    async def _wait_ready(self, settings: Settings, stop: asyncio.Event) -> str:
        """'' once every worker is ready (or a stop was asked); else why start-up failed."""
        # Each worker starts its components within their own timeouts; this bounds the whole.
        deadline = time.monotonic() + settings.startup_timeout_seconds * 4
        while len(self._ready) < len(self._processes) and not stop.is_set():
            for index, process in self._processes.items():
                if process.exitcode is not None:
                    return f"worker {index} failed to start (exit code {process.exitcode}); its log says why"
            if time.monotonic() > deadline:
                return "workers did not become ready within the start-up timeout"
            await asyncio.sleep(POLL_SECONDS)
        return ""

    async def _watch(self, settings: Settings, stop: asyncio.Event) -> int:
        """Restart workers that die, until asked to stop; 1 if they keep dying."""
        while not stop.is_set():
            for index, process in list(self._processes.items()):
                if process.exitcode is None:
                    continue
                now = time.monotonic()
                self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW]
                if len(self._restarts) >= MAX_RESTARTS:
                    log.error(
                        "workers keep dying (%d restarts in %.0f s): stopping", MAX_RESTARTS, RESTART_WINDOW
                    )
                    return 1
                log.error("worker %d exited (code %s): restarting it", index, process.exitcode)
                self._restarts.append(now)
                self.metrics.restarts.inc()
                self._start_worker(settings, index)
            with contextlib.suppress(TimeoutError):  # no stop yet: look at the workers again
                await asyncio.wait_for(stop.wait(), POLL_SECONDS * 5)
        return 0

    async def _stop_workers(self) -> None:
        """One SIGTERM each; each drains within the grace period. Stragglers are killed."""
        log.info("stopping %d workers (grace %.0f s)", len(self._processes), self.settings.grace_seconds)
        for process in self._processes.values():
            if process.exitcode is None and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.settings.grace_seconds + 10
        while any(p.exitcode is None for p in self._processes.values()):
            if time.monotonic() > deadline:
                log.error("workers still running after the grace period: killing them")
                self._kill_workers()
                break
            await asyncio.sleep(POLL_SECONDS)
        for index, process in self._processes.items():
            process.join(timeout=1)
            level = logging.INFO if process.exitcode == 0 else logging.WARNING
            log.log(level, "worker %d stopped (exit code %s)", index, process.exitcode)

    def _kill_workers(self) -> None:
        for process in self._processes.values():
            if process.exitcode is None and process.pid is not None:
                os.kill(process.pid, signal.SIGKILL)

    def _exit_at_once(self) -> None:
        self._kill_workers()
        os._exit(1)


def _reserve(host: str, port: int, setting: str) -> socket.socket:
    """Binds (without listening) so port 0 becomes one concrete free port for every worker,
    and a port already taken fails here, named.

    The first bind is without SO_REUSEPORT: that fails on a port anything listens on, including
    another `--workers` gateway, which would otherwise join its group and take half of its
    connections to a different data dir."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are fine
        try:
            probe.bind((host, port))
        except OSError as e:
            raise ports.cannot_listen(setting, host, port, e) from None
        port = probe.getsockname()[1]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ports.cannot_listen(setting, host, port, e) from None
    return sock
