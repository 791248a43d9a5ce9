"""A worker's side of the shared-state host: one Unix-socket connection, many calls at once.

`Hosted(connection, "store")` has the async methods of the object the supervisor hosts under
that name, so the gateway uses it where it would use its own store, cache backend, rate-limit
buckets or job queue. If the supervisor goes away, pending and later calls fail UNAVAILABLE
and the worker is told, so it shuts down rather than serve without its store.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from pathlib import Path

import grpc

from citadel.server.errors import ApiError
from citadel.server.workers.host import read_frame, write_frame

LOST = "the supervisor holding the shared store, cache and queue has gone away"


class HostConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._ids = itertools.count()
        self._pending: dict[int, asyncio.Future] = {}
        self._lost_callbacks: list[Callable[[], None]] = []
        self.lost = False
        self._task = asyncio.create_task(self._receive())

    @classmethod
    async def open(cls, path: Path) -> HostConnection:
        reader, writer = await asyncio.open_unix_connection(str(path), limit=2**20)
        return cls(reader, writer)

    def on_lost(self, callback: Callable[[], None]) -> None:
        self._lost_callbacks.append(callback)

    async def call(self, target: str, method: str, *args, **kwargs):
        if self.lost:
            raise ApiError(grpc.StatusCode.UNAVAILABLE, LOST)
        call_id = next(self._ids)
        answer = asyncio.get_running_loop().create_future()
        self._pending[call_id] = answer
        try:
            write_frame(self._writer, (call_id, target, method, args, kwargs))
            await self._writer.drain()  # back-pressure for large upserts
            return await answer
        except ConnectionError:
            raise ApiError(grpc.StatusCode.UNAVAILABLE, LOST) from None
        finally:
            self._pending.pop(call_id, None)

    async def _receive(self) -> None:
        try:
            # The socket closing (the host is gone) ends the loop; the finally fails what waits.
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while True:
                    call_id, ok, value = await read_frame(self._reader)
                    answer = self._pending.get(call_id)
                    if answer is None or answer.done():
                        continue  # the caller gave up (cancelled); the host still finished the call
                    if ok:
                        answer.set_result(value)
                    else:
                        answer.set_exception(value)
        finally:
            self.lost = True
            for answer in self._pending.values():
                if not answer.done():
                    answer.set_exception(ApiError(grpc.StatusCode.UNAVAILABLE, LOST))
            for callback in self._lost_callbacks:
                callback()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class Hosted:
    """Stands in for the object the supervisor hosts under `target`."""

    def __init__(self, connection: HostConnection, target: str) -> None:
        self._connection = connection
        self._target = target

    def __getattr__(self, method: str):
        if method.startswith("_"):
            raise AttributeError(method)

        async def remote(*args, **kwargs):
            return await self._connection.call(self._target, method, *args, **kwargs)

        remote.__name__ = method
        setattr(self, method, remote)  # built once per method name
        return remote

    async def close(self) -> None:
        """Nothing to release here: the supervisor closes the real object after every worker."""

    def __repr__(self) -> str:
        return f"Hosted({self._target!r})"
