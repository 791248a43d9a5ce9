"""Backend calls and health probes are not logged one line each (httpx's request log, which
also carries the backend URL with any credentials in it, is off at every gateway log level)."""

from __future__ import annotations

import time

from tests.models.conftest import backend, embed, write_config
from tests.support.gateway_process import GatewayProcess


def _run(workdir, server, level: str) -> str:
    workdir.mkdir()
    models = {"general": {"pattern": "realtime", "backends": [backend(server)]}}
    config = write_config(workdir / "citadel.toml", models, health_interval_seconds=0.2)
    proc = GatewayProcess(
        workdir / "data",
        env={"CITADEL_LOG_LEVEL": level},
        args=["--insecure-no-auth", "--config", str(config)],
    ).start()
    try:
        for i in range(3):
            embed(proc.stub(), f"log test {i}", "general")
        time.sleep(1)  # several health rounds
    finally:
        proc.stop()
    return proc.log()


def test_backend_requests_are_not_logged_one_line_each(servers, tmp_path):
    server = servers("quiet")
    for level in ("INFO", "DEBUG"):
        assert "HTTP Request:" not in _run(tmp_path / level, server, level)
