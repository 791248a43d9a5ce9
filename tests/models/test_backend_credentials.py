"""Backend credentials from the catalog (environment variable, file, URL userinfo) reach a real
HTTP server, and never the messages: a refused connection's error shows the URL redacted."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from citadel.server.models.catalog import parse_catalog
from citadel.server.models.providers import make_provider
from citadel.server.models.providers.base import BackendError

SECRET = "s3cret-token-value"


class Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_POST(self):  # noqa: N802 - the http.server hook name
        self.rfile.read(int(self.headers.get("content-length", 0)))
        Recorder.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = json.dumps({"embeddings": [[1.0, 0.0]]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        """Quiet: the test reads what was sent, not a log."""


@pytest.fixture
def recorder():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Recorder.seen = []
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def backend(table: dict):
    catalog = parse_catalog("m", {"m": {"backends": [{"provider": "ollama", "model": "x", **table}]}})
    return catalog.models["m"].backends[0]


def embed(spec) -> None:
    async def once():
        provider = make_provider(spec)
        try:
            await provider.embed(["a text"], 5.0)
        finally:
            await provider.close()

    asyncio.run(once())


def test_bearer_from_env_and_headers_from_file(recorder, tmp_path, monkeypatch):
    monkeypatch.setenv("CITADEL_TEST_BACKEND_TOKEN", SECRET)
    key_file = tmp_path / "key"
    key_file.write_text(SECRET + "-file\n")
    spec = backend(
        {
            "url": f"http://{recorder}",
            "api_key_env": "CITADEL_TEST_BACKEND_TOKEN",
            "headers": {"x-api-key": {"file": str(key_file)}, "x-team": "search"},
        }
    )
    assert SECRET not in repr(spec)  # the catalog keeps where a secret is, not the secret
    embed(spec)
    sent = Recorder.seen[-1]
    assert sent["authorization"] == f"Bearer {SECRET}"
    assert (sent["x-api-key"], sent["x-team"]) == (SECRET + "-file", "search")


def test_bearer_from_file(recorder, tmp_path):
    token = tmp_path / "token"
    token.write_text(SECRET)
    embed(backend({"url": f"http://{recorder}", "api_key_file": str(token)}))
    assert Recorder.seen[-1]["authorization"] == f"Bearer {SECRET}"


def test_url_userinfo_is_sent_as_basic_auth_and_shown_redacted(recorder):
    spec = backend({"url": f"http://citadel:{SECRET}@{recorder}"})
    embed(spec)
    expected = base64.b64encode(f"citadel:{SECRET}".encode()).decode()
    assert Recorder.seen[-1]["authorization"] == f"Basic {expected}"
    assert spec.shown_url == f"http://***@{recorder}"


def test_a_failing_backend_error_shows_no_credentials():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: connections are refused
    spec = backend({"url": f"http://citadel:{SECRET}@127.0.0.1:{port}"})
    with pytest.raises(BackendError) as e:
        embed(spec)
    assert SECRET not in str(e.value) and f"***@127.0.0.1:{port}" in str(e.value)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"api_key_env": "CITADEL_NO_SUCH_VAR"}, "backends[0].api_key_env: environment variable"),
        ({"api_key_file": "/nonexistent/token"}, "backends[0].api_key_file: cannot read"),
        ({"headers": {"x-key": {"env": "CITADEL_NO_SUCH_VAR"}}}, "backends[0].headers.x-key.env:"),
        ({"headers": {"x-key": {"vault": "k"}}}, "backends[0].headers.x-key: expected a string, {env"),
        ({"headers": {"bad name": "v"}}, "backends[0].headers.bad name: not a header name"),
        ({"headers": {"x-key": "a\r\nb"}}, "backends[0].headers.x-key: a header value cannot hold"),
    ],
)
def test_credential_mistakes_name_the_key(table, message):
    with pytest.raises(ValueError) as e:
        backend({"url": "http://127.0.0.1:1", **table})
    assert message in str(e.value)


def test_a_url_with_credentials_is_redacted_in_its_own_error():
    with pytest.raises(ValueError) as e:
        backend({"url": f"ftp://citadel:{SECRET}@127.0.0.1:1"})
    assert SECRET not in str(e.value) and "backends[0].url" in str(e.value)
