"""Fixtures for the fuzz tests: a gateway of their own (fuzzed writes and queued jobs stay out
of the shared one), started like `make run` with authentication off, with the collections of
seed.py in it."""

from __future__ import annotations

import pytest

from tests.fuzz import seed
from tests.support.gateway_process import GatewayProcess


@pytest.fixture(scope="package")
def fuzz_gateway(tmp_path_factory) -> GatewayProcess:
    proc = GatewayProcess(
        tmp_path_factory.mktemp("fuzz-gateway") / "data", env={"CITADEL_LOG_LEVEL": "WARNING"}
    ).start()
    seed.seed(proc.channel())
    yield proc
    proc.stop()
