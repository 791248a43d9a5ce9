"""CPU a gateway process and its children (workers, index builders) use, read from /proc."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.gateway_process import GatewayProcess


def gateway_processes(gw: GatewayProcess) -> list[int]:
    """The gateway and its children (workers, index builders)."""
    children = subprocess.run(["pgrep", "-P", str(gw.proc.pid)], capture_output=True, text=True).stdout
    return [gw.proc.pid, *(int(pid) for pid in children.split())]


def gateway_cpu_seconds(gw: GatewayProcess) -> float:
    total = 0.0
    for pid in gateway_processes(gw):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # exited between listing and reading
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def wait_until_idle(gateways: list[GatewayProcess], timeout: float = 300.0) -> None:
    """Until the gateways use under 5% of a core for 3 s in a row (index builds done)."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 3 and time.monotonic() < deadline:
        before = sum(gateway_cpu_seconds(g) for g in gateways)
        time.sleep(1.0)
        quiet = quiet + 1 if sum(gateway_cpu_seconds(g) for g in gateways) - before < 0.05 else 0


def cpu_per_call(
    gw: GatewayProcess, calls: dict[str, Callable[[int], object]], variants: int, per_block: int, rounds: int
) -> dict[str, list[float]]:
    """Gateway CPU µs per call of each of `calls`, one figure per round: each round runs every
    call in turn, a block of `per_block` after 20 warming calls (the connection and the path
    warm again after another protocol ran). `fn(i)` sends variant `i % variants`."""
    micros: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            for i in range(20):
                fn(i % variants)
            before = gateway_cpu_seconds(gw)
            for i in range(per_block):
                fn(i % variants)
            micros[name].append((gateway_cpu_seconds(gw) - before) / per_block * 1e6)
    return micros
