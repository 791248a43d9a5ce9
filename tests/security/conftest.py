"""A real gateway with authentication on and two tenants, and the probes every hostile-request
test uses: `/healthz` must keep answering meanwhile, and memory must come back afterwards."""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.auth_config import Credentials, write_config
from tests.support.gateway_process import GatewayProcess


@dataclass
class Secured:
    proc: GatewayProcess
    creds: Credentials

    def headers(self, name: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.creds.keys[name]}"}

    def metadata(self, name: str) -> tuple[tuple[str, str], ...]:
        return self.creds.bearer(name)

    def rss_bytes(self) -> int:
        return rss_bytes(self.proc.proc.pid)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def start_secured(root: Path, extra_config: str = "") -> Secured:
    creds = write_config(root / "citadel.toml", extra_config)
    proc = GatewayProcess(root / "data", args=["--config", str(creds.config_path)]).start()
    return Secured(proc, creds)


@pytest.fixture(scope="package")
def secured(tmp_path_factory) -> Secured:
    """Keys: reader/writer/admin of tenant `acme`, admin of tenant `globex`, tenant-less admin
    `root` (tests/support/auth_config.py); JWTs signed with its HS256 secret work too."""
    gateway = start_secured(tmp_path_factory.mktemp("secured"))
    yield gateway
    gateway.proc.stop()


@dataclass
class HealthWatch:
    """Polls /healthz from a thread while a hostile request runs; `worst` is the longest wait."""

    url: str
    timeout: float = 5.0
    latencies: list[float] = field(default_factory=list)
    failures: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> HealthWatch:
        def poll() -> None:
            with httpx.Client(timeout=self.timeout) as http:
                while not self._stop.is_set():
                    began = time.perf_counter()
                    try:
                        ok = http.get(self.url).status_code == 200
                    except httpx.HTTPError:
                        ok = False
                    self.latencies.append(time.perf_counter() - began)
                    self.failures += not ok
                    self._stop.wait(0.02)

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(self.timeout + 1)

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)

    @property
    def median(self) -> float:
        return statistics.median(self.latencies) if self.latencies else 0.0


@pytest.fixture
def health_watch(secured):
    """`with health_watch() as watch: ...` then assert on watch.worst / watch.failures."""
    return lambda: HealthWatch(f"{secured.proc.http_url}/healthz")
