"""The shared-state host: objects that only one process may own, served to worker processes.

The embedded store locks its data dir, and the in-process cache, rate-limit buckets and job
queue are only correct when every worker sees the same ones. Under `--workers N` the
supervisor owns them and serves their async methods over a Unix socket in a private
directory (mode 0700, so only this user can connect); each worker calls them through
`proxy.Hosted`, which has the same methods.

Frames are a 4-byte big-endian length and a pickle: (call id, target, method, args, kwargs)
in, (call id, ok, result or ApiError) out. Calls on one connection run concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import pickle
import shutil
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path

import grpc

from citadel.server.errors import ApiError

log = logging.getLogger("citadel.workers")

HEADER = struct.Struct(">I")


async def read_frame(reader: asyncio.StreamReader):
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    return pickle.loads(await reader.readexactly(size))


def write_frame(writer: asyncio.StreamWriter, message) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    writer.write(HEADER.pack(len(data)) + data)


class Host:
    """Serves the public async methods of `targets` to worker processes."""

    def __init__(self, targets: Mapping[str, object]) -> None:
        self._targets = dict(targets)
        self._methods: dict[tuple[str, str], object] = {}  # looked up once per method
        self._server: asyncio.AbstractServer | None = None
        self._dir: Path | None = None
        self._serving: set[asyncio.Task] = set()  # one per worker connection

    def add(self, targets: Mapping[str, object]) -> None:
        self._targets.update(targets)

    async def start(self) -> Path:
        # A short private path: Unix socket paths are limited to 107 bytes, data dirs are not.
        self._dir = Path(tempfile.mkdtemp(prefix="citadel-"))
        os.chmod(self._dir, 0o700)
        path = self._dir / "host.sock"
        self._server = await asyncio.start_unix_server(self._serve, path=str(path), limit=2**20)
        return path

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._serving):
                task.cancel()
            await asyncio.gather(*self._serving, return_exceptions=True)
            await self._server.wait_closed()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        serving = asyncio.current_task()
        self._serving.add(serving)
        calls: set[asyncio.Task] = set()
        try:
            while True:
                try:
                    call_id, target, method, args, kwargs = await read_frame(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the worker closed its end (it stopped, or died)
                task = asyncio.create_task(self._answer(writer, call_id, target, method, args, kwargs))
                calls.add(task)
                task.add_done_callback(calls.discard)
        finally:
            self._serving.discard(serving)
            writer.close()  # the worker learns at once that its answers will not come
            # Calls already running finish (a write must not be cut half-way); answers are dropped.
            if calls:
                await asyncio.gather(*calls, return_exceptions=True)

    async def _answer(self, writer, call_id: int, target: str, method: str, args, kwargs) -> None:
        try:
            result = (call_id, True, await self._call(target, method, args, kwargs))
        except ApiError as e:
            result = (call_id, False, e)
        except Exception as e:
            log.exception("shared %s.%s failed", target, method)
            result = (call_id, False, ApiError(grpc.StatusCode.INTERNAL, f"{target}.{method}: {e}"))
        if writer.is_closing():
            return
        try:
            write_frame(writer, result)
        except (pickle.PicklingError, TypeError, AttributeError) as e:
            message = f"{target}.{method}: the result cannot be sent to the worker: {e}"
            write_frame(writer, (call_id, False, ApiError(grpc.StatusCode.INTERNAL, message)))
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    async def _call(self, target: str, method: str, args, kwargs):
        fn = self._methods.get((target, method))
        if fn is None:
            obj = self._targets.get(target)
            fn = getattr(obj, method, None) if obj is not None and not method.startswith("_") else None
            if fn is None or not inspect.iscoroutinefunction(fn):
                raise ApiError(grpc.StatusCode.UNIMPLEMENTED, f"shared state has no {target}.{method}")
            self._methods[(target, method)] = fn
        return await fn(*args, **kwargs)
