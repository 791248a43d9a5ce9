"""A real `citadel serve` process on ephemeral loopback ports, for integration tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc

from citadel.vector.v1 import vector_service_pb2_grpc

START_TIMEOUT = 60.0
UNHANDLED_SHOWN_CHARS = 6_000  # one traceback or two


class GatewayProcess:
    """Starts `citadel serve` with a data dir; restartable on the same data."""

    # The module run as `python -m MODULE serve ...`; a test may run a gateway of its own.
    module = "citadel.server.cli"

    def __init__(
        self,
        data_dir: Path,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        settings_via: str = "flags",
    ):
        self.data_dir = data_dir
        self.env = {**os.environ, **(env or {})}
        # How the ports (0: ephemeral) and data dir reach the gateway: "flags", "env" (CITADEL_*
        # variables), or "none" when the test's own config file names them.
        self.settings_via = settings_via
        # Without a config naming credentials, run open (as `make run` does).
        self.args = list(args) if args is not None else ["--insecure-no-auth"]
        self.proc: subprocess.Popen | None = None
        self.grpc_port = 0
        self.http_port = 0
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self._channel: grpc.Channel | None = None
        self._channel_port = 0

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> GatewayProcess:
        self._close_channel()  # a restarted gateway listens on new ports
        ready = self.data_dir.parent / f"{self.data_dir.name}.ready.json"
        ready.unlink(missing_ok=True)
        log = open(self.log_path, "ab")
        settings = {"grpc-port": "0", "http-port": "0", "data-dir": str(self.data_dir)}
        flags, env = [], self.env
        if self.settings_via == "flags":
            flags = [arg for key, value in settings.items() for arg in (f"--{key}", value)]
        elif self.settings_via == "env":
            env = {**env, **{f"CITADEL_{k.upper().replace('-', '_')}": v for k, v in settings.items()}}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, "serve", *flags, "--ready-file", str(ready), *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"gateway not ready within {START_TIMEOUT} s:\n{self.log()}")
            time.sleep(0.05)
        ports = json.loads(ready.read_text())
        self.grpc_port, self.http_port = ports["grpc_port"], ports["http_port"]
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def channel(self) -> grpc.Channel:
        # A channel made while the gateway restarted may point at its old port: make a new one.
        if self._channel is not None and self._channel_port != self.grpc_port:
            self._close_channel()
        if self._channel is None:
            self._channel_port = self.grpc_port
            self._channel = grpc.insecure_channel(
                self.grpc_target,
                options=[
                    ("grpc.max_send_message_length", 64 << 20),
                    ("grpc.max_receive_message_length", 64 << 20),
                ],
            )
        return self._channel

    def stub(self) -> vector_service_pb2_grpc.VectorServiceStub:
        return vector_service_pb2_grpc.VectorServiceStub(self.channel())

    def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        self._close_channel()
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        self._close_channel()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._show_unhandled()

    def _show_unhandled(self) -> None:
        """Copies the log's unhandled errors (an INTERNAL's traceback) to stderr, which pytest
        shows with a failing test: the log itself is gone with its tmp dir by the time a CI
        failure is read."""
        log = self.log()
        start = log.find("unhandled error")
        if start >= 0:
            print(f"--- {self.log_path} from its first unhandled error ---", file=sys.stderr)
            print(log[start : start + UNHANDLED_SHOWN_CHARS], file=sys.stderr)

    def restart(self) -> GatewayProcess:
        self.stop()
        return self.start()
