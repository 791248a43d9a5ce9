"""Watches the gateway's dependencies and keeps their components' states true while it runs.

Every PERIOD_SECONDS each dependency is checked cheaply, each check bounded by
PROBE_TIMEOUT_SECONDS: Redis with PING, a Qdrant server with its collection list, the job queue
(SQLite or the supervisor's: its depth; on Redis: whatever Redis is), the model router from its
backends' health (no call of its own: the router's health checks probe the backends). Callers'
failures count too: a Redis connection error anywhere (cache, rate limits, queue) marks Redis
unavailable at once (redis_client.ErrorSignal), and its next good probe marks it running.

A required dependency that is down is `unavailable`, and the gateway is not ready; an optional
one (redis.optional) is `degraded`, as is the model router while some model has no healthy
backend: the gateway serves on. Each change of state is one log line (degraded.Outage), not one
per failed check; errors are redacted before they are kept or logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from citadel.server.degraded import Outage
from citadel.server.lifecycle import OBSERVED_STATES, Lifecycle
from citadel.server.periodic import Periodic
from citadel.server.redaction import redact_text

if TYPE_CHECKING:
    from citadel.server.models.router import ModelRouter

log = logging.getLogger("citadel.dependencies")

PERIOD_SECONDS = 0.5  # a change shows within about this plus one probe timeout
PROBE_TIMEOUT_SECONDS = 1.0


@dataclass
class _Check:
    name: str
    probe: Callable[[], Awaitable[object]]  # raises when the dependency is down
    down_state: str  # "unavailable" for a required dependency, "degraded" for an optional one
    every: float
    next_at: float = 0.0


class DependencyWatcher:
    def __init__(self, lifecycle: Lifecycle, period: float = PERIOD_SECONDS) -> None:
        self._life = lifecycle
        self._period = period
        self._checks: dict[str, _Check] = {}
        self._followers: dict[str, str] = {}  # component -> the check whose state it takes
        self._models: tuple[ModelRouter, str] | None = None
        self._passive: dict[str, BaseException] = {}
        self._outages: dict[str, Outage] = {}
        self._wake = asyncio.Event()
        self._rounds = Periodic("dependency-watcher", self.check_once, self._period, log, wake=self._wake)

    # -- what to watch ------------------------------------------------------------------

    def watch(
        self, name: str, probe: Callable[[], Awaitable[object]], required: bool = True, every: float = 0.0
    ) -> None:
        down = "unavailable" if required else "degraded"
        self._checks[name] = _Check(name, probe, down, max(every, self._period))

    def follow(self, name: str, leader: str) -> None:
        """`name` lives on `leader` (the job queue on Redis): it is up when the leader is."""
        self._followers[name] = leader

    def watch_models(self, router: ModelRouter, detail: str) -> None:
        self._models = (router, detail)

    def failed(self, name: str, error: BaseException) -> None:
        """A caller's call to `name` failed as an outage does: mark it down at the next round,
        now, rather than at its next probe. Synchronous: called from inside client code."""
        component = self._life.components.get(name)
        if component is None or component.state != "running":
            return  # already down (or not up yet): the probe will say when it is back
        self._passive.setdefault(name, error)
        self._wake.set()

    # -- running --------------------------------------------------------------------------

    def start(self) -> None:
        self._rounds.start()

    async def stop(self) -> None:
        await self._rounds.stop()

    async def check_once(self) -> None:
        """One round: the due probes, callers' failures since the last round, the models."""
        now = time.monotonic()
        passive, self._passive = self._passive, {}
        due = [c for c in self._checks.values() if c.name not in passive and now >= c.next_at]
        outcomes = await asyncio.gather(*(self._probe(c) for c in due))
        for check in due:
            self._passive.pop(check.name, None)  # its own probe's failure: already in `outcomes`
        errors = {c.name: error for c, error in zip(due, outcomes, strict=True)}
        errors |= {name: f"{_reason(e)} (seen by a caller)" for name, e in passive.items()}
        for name, error in errors.items():
            await self._apply(name, self._checks[name].down_state if error else "running", error)
        for name, leader in self._followers.items():
            if leader in errors:
                error = errors[leader]
                state = self._checks[leader].down_state if error else "running"
                await self._apply(name, state, f"{leader}: {error}" if error else "")
        if self._models is not None:
            await self._apply_models(*self._models)

    async def _probe(self, check: _Check) -> str:
        """'' when the dependency answered, else why not."""
        check.next_at = time.monotonic() + check.every
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
                await check.probe()
        except TimeoutError:
            return f"no answer within {PROBE_TIMEOUT_SECONDS:g} s"
        except Exception as e:
            return _reason(e)
        return ""

    async def _apply_models(self, router: ModelRouter, detail: str) -> None:
        without = models_without_healthy_backend(router)
        if not without:
            await self._apply("models", "running", "", detail)
            return
        names = ", ".join(without)
        reasons = "; ".join(f"{name}: {why}" for name, why in without.items())
        await self._apply(
            "models",
            "degraded",
            f"no healthy backend for {reasons}",
            f"{detail}; no healthy backend: {names}",
        )

    async def _apply(self, name: str, state: str, error: str, detail: str = "") -> None:
        component = self._life.components.get(name)
        if component is None or component.state not in OBSERVED_STATES:
            return  # starting, stopping or failed: start-up and shutdown own those states
        error = redact_text(error)
        await self._life.observe(name, state, error, detail)
        outage = self._outages.setdefault(name, Outage(name, "failed checks", log))
        if state == "running":
            outage.recovered()
        else:
            outage.failed(error, state)


def models_without_healthy_backend(router: ModelRouter) -> dict[str, str]:
    """Each model none of whose backends is healthy (as ListModels shows it) and consistent,
    with its backends' last errors."""
    found: dict[str, str] = {}
    for pool in router.pools.values():
        if any(b.healthy is not False and b.consistent is not False for b in pool.backends):
            continue
        found[pool.name] = ", ".join(
            f"{b.id} ({b.last_error or 'failing health checks'})" for b in pool.backends
        )
    return found


def _reason(error: BaseException) -> str:
    return getattr(error, "message", "") or f"{type(error).__name__}: {error}"
