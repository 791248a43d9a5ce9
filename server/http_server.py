"""Serves the adapters' ASGI app with uvicorn inside the gateway's event loop.

The socket is bound here (port 0 gives a free port we can report) and uvicorn's own signal
handling is bypassed: the gateway owns the process lifecycle.
"""

from __future__ import annotations

import socket

import uvicorn


class HttpServer:
    def __init__(
        self, app, host: str, port: int, reuse_port: bool = False, ws_max_bytes: int = 16 * 1024 * 1024
    ) -> None:
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are
        # TCP, and without it Nagle + delayed ACK add ~40 ms to every HTTP response.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:  # worker processes share the port; the kernel spreads connections
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            self._sock.bind((host, port))
            self._sock.listen(2048)
        except OSError:
            self._sock.close()  # the caller names the port; the socket must not leak
            raise
        self._sock.setblocking(False)
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            http="httptools",
            ws="websockets-sansio",
            # What uvicorn buffers of one WebSocket message before any of our code sees it.
            ws_max_size=ws_max_bytes,
            timeout_graceful_shutdown=10,
        )
        config.load()
        self._server = uvicorn.Server(config)
        self._server.lifespan = config.lifespan_class(config)  # as uvicorn.Server._serve sets it

    async def start(self) -> None:
        await self._server.startup(sockets=[self._sock])

    async def stop(self) -> None:
        self._server.should_exit = True
        await self._server.shutdown(sockets=[self._sock])
