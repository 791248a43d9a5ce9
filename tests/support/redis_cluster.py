"""A real Redis Cluster of three primaries on free loopback ports, made and torn down by tests.

Each node is a redis-server in cluster mode with its own client and cluster-bus ports; the
slots are split by `redis-cli --cluster create` and the cluster is used once every node says
`cluster_state:ok`. Bounded in time: a cluster that is not ready in CREATE_SECONDS fails.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.support.redis_server import free_port

CREATE_SECONDS = 30.0


class RedisCluster:
    def __init__(self, binary: str, workdir: Path, primaries: int = 3) -> None:
        self.binary = binary
        self.cli = shutil.which("redis-cli") or str(Path(binary).with_name("redis-cli"))
        self.workdir = workdir
        ports = _distinct_free_ports(primaries * 2)
        self.ports, self._bus_ports = ports[:primaries], ports[primaries:]
        self.procs: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        """One node's URL: the cluster client learns the others from it."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> RedisCluster:
        try:
            for port, bus in zip(self.ports, self._bus_ports, strict=True):
                self.procs.append(self._node(port, bus))
            deadline = time.monotonic() + CREATE_SECONDS
            for port in self.ports:
                _wait_for_pong(port, deadline)
            subprocess.run(
                [self.cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports)]
                + ["--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=CREATE_SECONDS,
            )
            for port in self.ports:
                self._wait_for_state_ok(port, deadline)
        except BaseException:
            self.kill()
            raise
        return self

    def _node(self, port: int, bus: int) -> subprocess.Popen:
        node_dir = self.workdir / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        return subprocess.Popen(
            [
                self.binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--cluster-enabled", "yes",
                "--cluster-port", str(bus),
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(node_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def _wait_for_state_ok(self, port: int, deadline: float) -> None:
        while time.monotonic() < deadline:
            info = subprocess.run(
                [self.cli, "-p", str(port), "cluster", "info"], capture_output=True, text=True, timeout=5
            ).stdout
            if "cluster_state:ok" in info:
                return
            time.sleep(0.1)
        raise RuntimeError(f"Redis Cluster node on port {port} is not ok after {CREATE_SECONDS:g} s")

    def run(self, *command: str, port: int | None = None) -> str:
        """A redis-cli command against one node (the first by default), its output as text."""
        return subprocess.run(
            [self.cli, "-p", str(port or self.ports[0]), *command],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait(10)
        self.procs = []


def _distinct_free_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _wait_for_pong(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server did not answer on port {port}")
