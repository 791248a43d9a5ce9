"""A bare loopback listener in a child process, to stand where a dependency should be and then
vanish: `hold` accepts connections, keeps what is sent and never answers (a server hung
mid-request, or a port that swallows a handshake); `http503` answers every HTTP request 503 (a proxy with no backend
behind it) and counts them. Neither speaks any dependency's protocol. `kill()` SIGKILLs it,
so its connections are reset by the kernel as a crashed server's are.

    python -m tests.support.tcp_listener MODE PORT_FILE
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

START_TIMEOUT = 10.0


class Listener:
    def __init__(self, mode: str, workdir: Path) -> None:
        self.mode = mode
        self._port_file = workdir / f"listener-{mode}-{os.getpid()}-{time.monotonic_ns()}.port"
        self._proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> Listener:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.tcp_listener", self.mode, str(self._port_file)],
            cwd=Path(__file__).resolve().parents[2],
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._port_file.exists() or not self._port_file.read_text().endswith("\n"):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.mode} listener did not start")
            time.sleep(0.02)
        self.port = int(self._port_file.read_text())
        return self

    def requests(self) -> int:
        """HTTP requests answered so far (http503), as the child counts them in a file."""
        counted = self._port_file.with_suffix(".count")
        return int(counted.read_text() or 0) if counted.exists() else 0

    def received(self) -> bytes:
        """Everything sent to it so far (hold)."""
        kept = self._port_file.with_suffix(".bytes")
        return kept.read_bytes() if kept.exists() else b""

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(timeout=10)

    def __enter__(self) -> Listener:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()


def _hold(conn: socket.socket, received: Path, lock: threading.Lock) -> None:
    with conn:
        data = conn.recv(65536)
        while data:  # read everything, keep it for the test, answer nothing
            with lock, received.open("ab") as f:
                f.write(data)
            data = conn.recv(65536)


def _http503(conn: socket.socket, count: list[int], count_file: Path, lock: threading.Lock) -> None:
    reply = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    with conn:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        with lock:
            count[0] += 1
            count_file.write_text(str(count[0]))
        conn.sendall(reply)


def main(mode: str, port_file: Path) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    count, lock = [0], threading.Lock()
    port_file.write_text(f"{server.getsockname()[1]}\n")
    while True:
        conn, _ = server.accept()
        if mode == "hold":
            target, args = _hold, (conn, port_file.with_suffix(".bytes"), lock)
        else:
            target, args = _http503, (conn, count, port_file.with_suffix(".count"), lock)
        threading.Thread(target=target, args=args, daemon=True).start()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
