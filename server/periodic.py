"""A background round repeated for as long as the gateway runs (health checks, dependency
probes): a failing round is logged and the next one runs anyway; stopping cancels it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable


class Periodic:
    def __init__(
        self,
        name: str,
        run_round: Callable[[], Awaitable[None]],
        period: float,
        log: logging.Logger,
        wake: asyncio.Event | None = None,
    ) -> None:
        self._name = name
        self._run_round = run_round
        self._period = period
        self._log = log
        self._wake = wake  # set: the next round starts at once instead of after the period
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self._run_round()
            except Exception:
                self._log.exception("%s: a round failed", self._name)
            if self._wake is None:
                await asyncio.sleep(self._period)
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._period)
