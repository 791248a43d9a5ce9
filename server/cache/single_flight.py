"""Coalesces concurrent identical cache misses in this process: one call does the work, the
others wait for its result (or its error)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


class SingleFlight:
    def __init__(self) -> None:
        self._running: dict[str, asyncio.Future] = {}

    async def run(self, key: str, work: Callable[[], Awaitable[Any]]) -> tuple[Any, bool]:
        """(result, True when this call did the work)."""
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running), False
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            result = await work()
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved here, so a flight without waiters logs nothing
            raise
        else:
            future.set_result(result)
            return result, True
        finally:
            del self._running[key]
