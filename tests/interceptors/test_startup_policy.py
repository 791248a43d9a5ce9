"""Start-up refuses configurations that would leave doors open or that name unknown keys."""

from __future__ import annotations

import subprocess
import sys

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool

from citadel.server.methods import PolicyError, method_specs
from tests.support.gateway_process import GatewayProcess


def run_serve(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """`citadel serve` expected to refuse to start: its exit code and output."""
    command = [sys.executable, "-m", "citadel.server.cli", "serve", "--grpc-port", "0", "--http-port", "0"]
    return subprocess.run(
        [*command, "--data-dir", str(tmp_path / "data"), *args], capture_output=True, text=True, timeout=60
    )


def test_rpc_without_access_role_stops_start_up():
    """A service whose RPC declares no access option is refused when the specs are built."""
    pool = descriptor_pool.DescriptorPool()
    f = descriptor_pb2.FileDescriptorProto(name="open_door.proto", package="t.v1", syntax="proto3")
    f.message_type.add(name="Req")
    f.message_type.add(name="Resp")
    f.service.add(name="OpenService").method.add(
        name="Leak", input_type=".t.v1.Req", output_type=".t.v1.Resp"
    )
    pool.Add(f)
    with pytest.raises(PolicyError, match=r"t.v1.OpenService.Leak declares no access role"):
        method_specs([pool.FindServiceByName("t.v1.OpenService")])


def test_auth_on_without_credentials_fails_clearly(tmp_path):
    done = run_serve(tmp_path)  # no --insecure-no-auth, no keys
    assert done.returncode == 2
    assert "auth.enabled is true but no credentials are configured" in done.stderr


def test_insecure_mode_logs_a_warning(tmp_path):
    proc = GatewayProcess(tmp_path / "data").start()  # runs with --insecure-no-auth
    assert proc.stop() == 0
    assert "authentication is OFF" in proc.log()


@pytest.mark.parametrize(
    "toml, fragment",
    [
        ("[auth]\nenabeld = true\n", "auth.enabeld: unknown setting"),
        ('[server]\ngrpc_port = "x"\n', "server.grpc_port: expected an integer"),
        ('[[auth.api_keys]]\nid = "k"\nhash = "nope"\nrole = "reader"\n', "auth.api_keys[0].hash"),
        ('[[auth.api_keys]]\nid = "k"\nhash = "sha256:00:00"\nrole = "boss"\n', "auth.api_keys[0]"),
        ('[rate_limits.buckets]\n"role:reader" = {rate = 0}\n', "rate_limits.buckets.role:reader"),
        ("[cache.ttl_seconds]\nsearches = 5\n", "cache.ttl_seconds.searches"),
    ],
)
def test_bad_config_names_the_key(tmp_path, toml, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    done = run_serve(tmp_path, "--config", str(path))
    assert done.returncode == 2, done.stderr
    assert fragment in done.stderr, done.stderr


def test_config_check_accepts_the_example_and_names_bad_keys(tmp_path):
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "server" / "config_examples" / "citadel.example.toml"
    ok = subprocess.run(
        [sys.executable, "-m", "citadel.server.cli", "config", "check", str(example)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert "ok (gRPC 127.0.0.1:8081" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("[jobs]\nworkers = 0\n")
    done = subprocess.run(
        [sys.executable, "-m", "citadel.server.cli", "config", "check", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "jobs.workers: must be at least 1" in done.stderr
