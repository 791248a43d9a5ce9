"""CPU a gateway process and its children (workers, index builders) use, read from /proc."""

from __future__ import annotations

import os
import subprocess
import time
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
        except FileNotFoundError:
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
