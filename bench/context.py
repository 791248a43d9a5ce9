"""What every benchmark section shares: a scratch dir, gateway processes, seeded data."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tests.support.gateway_process import GatewayProcess


class BenchContext:
    def __init__(self, quick: bool = False) -> None:
        self.quick = quick  # fewer samples, smaller data: for smoke runs
        self.root = Path(tempfile.mkdtemp(prefix="citadel-bench-"))
        self._processes: list[GatewayProcess] = []

    def samples(self, full: int) -> int:
        return max(20, full // 10) if self.quick else full

    def scratch(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @contextlib.contextmanager
    def gateway(
        self, name: str, env: dict[str, str] | None = None, args: list[str] | None = None
    ) -> Iterator[GatewayProcess]:
        proc = GatewayProcess(
            self.scratch(name) / "data", env={"CITADEL_LOG_LEVEL": "WARNING", **(env or {})}, args=args
        )
        proc.start()
        try:
            yield proc
        finally:
            proc.stop()

    @staticmethod
    def vectors(n: int, dim: int, seed: int = 7) -> np.ndarray:
        rng = np.random.default_rng(seed)
        v = rng.standard_normal((n, dim), dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def close(self) -> None:
        if not os.environ.get("CITADEL_BENCH_KEEP"):
            shutil.rmtree(self.root, ignore_errors=True)
