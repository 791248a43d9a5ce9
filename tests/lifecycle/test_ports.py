"""A port already in use stops start-up with a message naming the port and how to change it,
whether one gateway or a supervisor with workers binds it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

HOW_TO_CHOOSE = {
    "grpc": "gRPC port {port} is already in use: choose another with --grpc-port, CITADEL_GRPC_PORT or server.grpc_port",
    "http": "HTTP port {port} is already in use: choose another with --http-port, CITADEL_HTTP_PORT or server.http_port",
}


@pytest.fixture
def taken_port():
    """A loopback port something else listens on for the whole test."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def serve(data_dir, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`citadel serve ...`, expected to fail start-up (bounded: a gateway that started is killed)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "citadel.server.cli",
            "serve",
            "--insecure-no-auth",
            "--data-dir",
            str(data_dir),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("which", ["grpc", "http"])
def test_a_taken_port_is_named_with_how_to_choose_another(tmp_path, taken_port, which, workers):
    other = "http" if which == "grpc" else "grpc"
    result = serve(
        tmp_path / "data", "--workers", workers, f"--{which}-port", str(taken_port), f"--{other}-port", "0"
    )
    assert result.returncode == 2, result.stderr
    assert HOW_TO_CHOOSE[which].format(port=taken_port) in result.stderr
    assert "Errno" not in result.stderr and "Failed to bind" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_taken_port_set_by_environment_is_named_too(tmp_path, taken_port):
    result = serve(tmp_path / "data", env={"CITADEL_HTTP_PORT": str(taken_port), "CITADEL_GRPC_PORT": "0"})
    assert result.returncode == 2, result.stderr
    assert HOW_TO_CHOOSE["http"].format(port=taken_port) in result.stderr
