"""No secret in a reply or the log, against a real gateway with auth on whose model backends are
configured with credentials: a live model server reached through `user:pass@` in its URL, with a
header from an environment variable and a bearer token from a file, and a dead one whose errors
would carry its URL. Each request over gRPC, REST and GraphQL.

Status: any reader learns the state of each component; where it runs (the data dir, addresses)
and its last error are for admins only.
"""

from __future__ import annotations

import socket
import time

import grpc
import pytest

from citadel.admin.v1 import admin_service_pb2 as admin
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.security.conftest import start_secured
from tests.security.protocol_calls import PROTOCOLS, call
from tests.support.model_server import ModelServer

USERINFO_SECRET = "userinfo-pass-5f1c"
HEADER_SECRET = "header-secret-77aa"
FILE_SECRET = "file-token-c0ffee"
SECRETS = (USERINFO_SECRET, HEADER_SECRET, FILE_SECRET)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def leaky(tmp_path_factory):
    """A secured gateway whose models `live` and `dead` have credentials in every form."""
    root = tmp_path_factory.mktemp("secrets")
    server = ModelServer(root / "model").start()
    token_file = root / "backend-token"
    token_file.write_text(FILE_SECRET)
    dead_port = closed_port()
    models = f"""
[models]
default = "live"
health_interval_seconds = 0.5

[models.catalog.live]
backends = [{{ id = "live-a", provider = "ollama", url = "http://citadel:{USERINFO_SECRET}@127.0.0.1:{server.port}", model = "m", headers = {{ "x-api-key" = {{ env = "CITADEL_TEST_BACKEND_HEADER" }} }} }}]

[models.catalog.dead]
backends = [{{ id = "dead-a", provider = "openai", url = "http://citadel:{USERINFO_SECRET}@127.0.0.1:{dead_port}", model = "m", api_key_file = "{token_file}" }}]
"""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CITADEL_TEST_BACKEND_HEADER", HEADER_SECRET)
        gateway = start_secured(root, models)
    yield gateway
    gateway.proc.stop()
    server.close()


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked in: {text[:2000]}"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_list_models_shows_backend_urls_redacted(leaky, protocol):
    outcome = call(leaky, protocol, "ListModels", pb.ListModelsRequest(), leaky.creds.keys["reader"])
    assert outcome.code == grpc.StatusCode.OK, outcome
    backends = {b.id: b for m in outcome.response.models for b in m.backends}
    assert backends["live-a"].url.startswith("http://***@127.0.0.1:")
    assert backends["dead-a"].url.startswith("http://***@127.0.0.1:")
    assert_no_secret(str(outcome.response))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_embedding_through_the_live_backend_works(leaky, protocol):
    outcome = call(
        leaky,
        protocol,
        "GenerateEmbedding",
        pb.GenerateEmbeddingRequest(text="hello"),
        leaky.creds.keys["reader"],
    )
    assert outcome.code == grpc.StatusCode.OK, outcome
    assert len(outcome.response.embedding) == 384


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_dead_backends_errors_carry_no_credentials(leaky, protocol):
    outcome = call(
        leaky,
        protocol,
        "GenerateEmbedding",
        pb.GenerateEmbeddingRequest(text="hello", model="dead"),
        leaky.creds.keys["reader"],
    )
    assert outcome.code == grpc.StatusCode.UNAVAILABLE, outcome
    assert_no_secret(outcome.message)
    models = call(leaky, protocol, "ListModels", pb.ListModelsRequest(), leaky.creds.keys["reader"]).response
    dead = next(b for m in models.models for b in m.backends if b.id == "dead-a")
    assert dead.last_error, "the failure is reported"
    assert "***@127.0.0.1" in dead.last_error
    assert_no_secret(dead.last_error)


def test_the_gateway_log_holds_no_secret(leaky):
    # Enough failures to open the dead backend's circuit, which is logged with its last error.
    for _ in range(6):
        call(
            leaky,
            "grpc",
            "GenerateEmbedding",
            pb.GenerateEmbeddingRequest(text="hello", model="dead"),
            leaky.creds.keys["reader"],
        )
    deadline = time.monotonic() + 10
    while "dead-a" not in leaky.proc.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    log = leaky.proc.log()
    assert "dead-a" in log and "***@127.0.0.1" in log  # its failures were logged ...
    assert_no_secret(log)  # ... without its credentials


# -- status ----------------------------------------------------------------------------------


@pytest.mark.parametrize("caller", ["reader", "admin"])  # admin: of tenant acme
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_status_shows_readers_no_internal_details(leaky, protocol, caller):
    outcome = call(
        leaky, protocol, "GetServiceStatus", admin.GetServiceStatusRequest(), leaky.creds.keys[caller]
    )
    assert outcome.code == grpc.StatusCode.OK, outcome
    status = outcome.response
    assert {"store", "models", "grpc", "http"} <= {c.name for c in status.components}
    assert all(not c.detail and not c.last_error for c in status.components)
    assert str(leaky.proc.data_dir) not in str(status)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_status_shows_admins_the_details(leaky, protocol):
    outcome = call(
        leaky, protocol, "GetServiceStatus", admin.GetServiceStatusRequest(), leaky.creds.keys["root"]
    )
    assert outcome.code == grpc.StatusCode.OK, outcome
    store = next(c for c in outcome.response.components if c.name == "store")
    assert str(leaky.proc.data_dir) in store.detail
    assert_no_secret(str(outcome.response))
