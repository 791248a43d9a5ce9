"""`citadel serve` takes its ports and data dir from CITADEL_* variables and from the config
file as well as from flags: a real gateway started each way keeps its data where it was told."""

from __future__ import annotations

from pathlib import Path

from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.support.gateway_process import GatewayProcess


def create_and_restart(proc: GatewayProcess) -> None:
    """A collection made through this gateway is there again after a restart on the same settings."""
    proc.start()
    try:
        proc.stub().CreateCollection(
            pb.CreateCollectionRequest(
                collection=resources_pb2.Collection(
                    name="kept", dimension=4, distance=resources_pb2.DISTANCE_COSINE
                )
            ),
            timeout=30,
        )
        assert proc.stop() == 0
        proc.start()
        names = [
            c.name for c in proc.stub().ListCollections(pb.ListCollectionsRequest(), timeout=30).collections
        ]
        assert names == ["kept"]
    finally:
        proc.kill()


def test_data_dir_and_ports_from_the_environment(tmp_path: Path) -> None:
    data = tmp_path / "from-env"
    create_and_restart(GatewayProcess(data, settings_via="env"))
    assert data.is_dir() and any(data.iterdir())


def test_data_dir_from_the_config_file(tmp_path: Path) -> None:
    data = tmp_path / "from-toml"
    config = tmp_path / "citadel.toml"
    config.write_text(f'[server]\ndata_dir = "{data}"\ngrpc_port = 0\nhttp_port = 0\n')
    # The file is the only place the data dir is named: no flag, no CITADEL_DATA_DIR.
    args = ["--insecure-no-auth", "--config", str(config)]
    proc = GatewayProcess(tmp_path / "unused", args=args, settings_via="none")
    create_and_restart(proc)
    assert data.is_dir() and any(data.iterdir())
    assert not (tmp_path / "unused").exists()


def test_a_data_dir_that_is_not_a_string_is_refused_by_name(tmp_path: Path) -> None:
    config = tmp_path / "citadel.toml"
    config.write_text("[server]\ndata_dir = 5\n")
    proc = GatewayProcess(tmp_path / "data", args=["--insecure-no-auth", "--config", str(config)])
    try:
        proc.start()
    except RuntimeError as e:
        assert "server.data_dir: expected a string, got 5" in str(e)
    else:
        proc.kill()
        raise AssertionError("a gateway started with data_dir = 5")
