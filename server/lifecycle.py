"""Components of a gateway, started in dependency order and stopped in reverse.

Each start has a timeout and leaves the component running or failed with its error; a
failed required component stops start-up with one line naming it, an optional one is degraded.
Once running, the dependency watcher (dependencies.py) reports what it observes: running,
degraded (serving, impaired) or unavailable. The gateway is ready while every component is
running or degraded. Every state is mirrored into grpc.health.v1 (service name = component
name, "" = the whole gateway) and GetServiceStatus.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

from grpc_health.v1 import health, health_pb2

log = logging.getLogger("citadel.lifecycle")
T = TypeVar("T")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# States in which a component serves: the gateway is ready while every component is in one.
SERVING_STATES = frozenset({"running", "degraded"})
# States the dependency watcher moves a component between once it has started.
OBSERVED_STATES = frozenset({"running", "degraded", "unavailable"})


class StartupError(RuntimeError):
    """A component did not start; the message names it."""


@dataclass
class Component:
    name: str
    detail: str = ""
    # stopped | starting | running | degraded | unavailable | stopping | failed
    state: str = "stopped"
    since: float = field(default_factory=time.time)  # when it entered `state`
    last_error: str = ""  # kept after recovery: the last thing that went wrong


class Lifecycle:
    def __init__(self, health_servicer: health.aio.HealthServicer, timeout_seconds: float) -> None:
        self.components: dict[str, Component] = {}
        self._health = health_servicer
        self._timeout = timeout_seconds
        self.started_at = time.time()

    async def start(self, name: str, step: Awaitable[T], detail: str = "", required: bool = True) -> T | None:
        """Runs `step` as component `name`'s start; its result, or None when an optional one failed."""
        component = self.components.setdefault(name, Component(name))
        component.detail = detail or component.detail
        await self._set(component, "starting")
        try:
            result = await asyncio.wait_for(step, self._timeout)
        except Exception as e:
            reason = f"did not start within {self._timeout:.0f} s" if isinstance(e, TimeoutError) else str(e)
            component.last_error = reason
            if required:
                await self._set(component, "failed")
                raise StartupError(f"{name}: {reason}") from e
            log.warning("%s unavailable, continuing without it: %s", name, reason)
            await self._set(component, "degraded")  # optional: the gateway serves without it
            return None
        await self._set(component, "running")
        return result

    async def mark(self, name: str, state: str, error: str = "") -> None:
        component = self.components.setdefault(name, Component(name))
        if error:
            component.last_error = error
        await self._set(component, state)

    async def observe(self, name: str, state: str, error: str = "", detail: str = "") -> bool:
        """What the dependency watcher saw; `since` moves only when the state changes. True
        when it did change."""
        component = self.components.get(name)
        if component is None or component.state not in OBSERVED_STATES:
            return False  # not started yet, or shutting down: start-up and stop own those states
        if error:
            component.last_error = error
        if detail:
            component.detail = detail
        if component.state == state:
            return False
        await self._set(component, state)
        return True

    @property
    def ready(self) -> bool:
        return bool(self.components) and all(c.state in SERVING_STATES for c in self.components.values())

    async def _set(self, component: Component, state: str) -> None:
        component.state = state
        component.since = time.time()
        await self._health.set(component.name, SERVING if state in SERVING_STATES else NOT_SERVING)
        await self._health.set("", SERVING if self.ready else NOT_SERVING)
