"""CORS on port 8000: a page served from another loopback origin calls REST with a bearer key in
headless Chromium; the allowed origin's page reads the JSON, another origin's page is blocked.
The same rules over plain HTTP for preflights, REST, GraphQL and WebSocket handshakes, and a
gateway without origins configured adds nothing."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from citadel.adapters.app import HttpApp
from citadel.adapters.cors import CorsPolicy
from citadel.server.config import ConfigError, Settings
from tests.security.conftest import Secured, start_secured
from tests.support.chromium import chromium_dom
from tests.support.gateway_process import GatewayProcess

OTHER = "http://127.0.0.1:1"  # an origin nobody listed


class PageServer:
    """A tiny web server on a free loopback port serving `html`: another origin than the gateway."""

    def __init__(self) -> None:
        self.html = ""
        self.posted: bytes = b""  # what the page last POSTed back to its own origin
        self.reported = threading.Event()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        site = self

        class Page(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = site.html.encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                site.posted = self.rfile.read(int(self.headers.get("content-length", "0")))
                self.send_response(204)
                self.end_headers()
                site.reported.set()

            def log_message(self, *args) -> None:  # quiet test output
                return

        return Page


@contextmanager
def page_server() -> Iterator[PageServer]:
    site = PageServer()
    try:
        yield site
    finally:
        site.close()


@pytest.fixture(scope="module")
def allowed_site() -> Iterator[PageServer]:
    """Bound before the gateway starts, so the origin the gateway allows is surely this one."""
    with page_server() as site:
        yield site


@pytest.fixture(scope="module")
def cors_gateway(tmp_path_factory, allowed_site) -> Iterator[Secured]:
    gateway = start_secured(
        tmp_path_factory.mktemp("cors"),
        f'[server]\ncors_allow_origins = ["{allowed_site.origin}"]\ncors_max_age_seconds = 120\n',
    )
    yield gateway
    gateway.proc.stop()


def fetch_page(gateway_url: str, key: str) -> str:
    """A page whose script lists collections with a bearer key and writes what it saw."""
    return f"""<!doctype html><html><body><pre id="out">pending</pre><script>
fetch("{gateway_url}/v1/collections", {{headers: {{"authorization": "Bearer {key}"}}}})
  .then(r => r.json().then(j => "status " + r.status + " " + JSON.stringify(j)))
  .catch(e => "blocked: " + e)
  .then(t => {{ document.getElementById("out").textContent = t; }});
</script></body></html>"""


def make_collection(gateway: Secured) -> str:
    name = f"cors-{uuid.uuid4().hex[:8]}"
    reply = httpx.post(
        f"{gateway.proc.http_url}/v1/collections",
        json={"name": name, "dimension": 3, "distance": "DISTANCE_COSINE"},
        headers=gateway.headers("admin"),
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return name


def test_a_page_from_an_allowed_origin_reads_the_reply_and_another_origin_is_blocked(
    cors_gateway, allowed_site, tmp_path
):
    name = make_collection(cors_gateway)
    html = fetch_page(cors_gateway.proc.http_url, cors_gateway.creds.keys["reader"])

    allowed_site.html = html
    dom = chromium_dom(allowed_site.origin + "/", tmp_path / "profile-allowed", budget_ms=10000)
    assert "status 200" in dom and name in dom, dom

    with page_server() as other_site:
        other_site.html = html
        dom = chromium_dom(other_site.origin + "/", tmp_path / "profile-other", budget_ms=10000)
    assert "blocked: TypeError" in dom and name not in dom, dom


def test_preflight_allows_the_bearer_header_for_the_allowed_origin_only(cors_gateway, allowed_site):
    url = f"{cors_gateway.proc.http_url}/v1/collections"
    asks = {"access-control-request-method": "GET", "access-control-request-headers": "authorization"}
    allowed = httpx.options(url, headers={"origin": allowed_site.origin, **asks})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == allowed_site.origin
    assert "authorization" in allowed.headers["access-control-allow-headers"]
    assert "GET" in allowed.headers["access-control-allow-methods"]
    assert allowed.headers["access-control-max-age"] == "120"

    refused = httpx.options(url, headers={"origin": OTHER, **asks})
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers
    assert refused.json()["message"] == f"origin '{OTHER}' is not in server.cors_allow_origins"

    unlisted = httpx.options(
        url, headers={"origin": allowed_site.origin, **asks, "access-control-request-headers": "x-evil"}
    )
    assert unlisted.status_code == 403
    assert unlisted.json()["message"] == "request header 'x-evil' is not in server.cors_allow_headers"


def test_requests_from_an_origin_not_allowed_never_reach_the_gateway(cors_gateway, allowed_site):
    # A "simple" request a browser sends without a preflight must not write either.
    name = f"cors-{uuid.uuid4().hex[:8]}"
    reply = httpx.post(
        f"{cors_gateway.proc.http_url}/v1/collections",
        content=json.dumps({"name": name, "dimension": 3}),
        headers={"origin": OTHER, "content-type": "text/plain", **cors_gateway.headers("admin")},
    )
    assert reply.status_code == 403 and reply.json()["code"] == 7  # PERMISSION_DENIED
    listed = httpx.get(f"{cors_gateway.proc.http_url}/v1/collections", headers=cors_gateway.headers("reader"))
    assert name not in listed.text

    graphql = httpx.post(
        f"{cors_gateway.proc.http_url}/graphql",
        json={"query": "{ listCollections { collections { name } } }"},
        headers={"origin": OTHER, **cors_gateway.headers("reader")},
    )
    assert graphql.status_code == 403

    ws_url = cors_gateway.proc.http_url.replace("http://", "ws://") + "/graphql"
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(ws_url, origin=OTHER, subprotocols=["graphql-transport-ws"], open_timeout=10)
    assert refused.value.response.status_code == 403
    with ws_connect(
        ws_url, origin=allowed_site.origin, subprotocols=["graphql-transport-ws"], open_timeout=10
    ) as accepted:
        assert accepted.subprotocol == "graphql-transport-ws"


def test_allowed_and_same_origin_requests_are_answered(cors_gateway, allowed_site):
    name = make_collection(cors_gateway)
    base = cors_gateway.proc.http_url
    rest = httpx.get(
        f"{base}/v1/collections", headers={"origin": allowed_site.origin, **cors_gateway.headers("reader")}
    )
    assert rest.status_code == 200 and name in rest.text
    assert rest.headers["access-control-allow-origin"] == allowed_site.origin
    assert "x-request-id" in rest.headers["access-control-expose-headers"]
    assert "Origin" in rest.headers["vary"]

    query = {"query": f'{{ getCollection(name: "{name}") {{ collection {{ name }} }} }}'}
    graphql = httpx.post(
        f"{base}/graphql",
        json=query,
        headers={"origin": allowed_site.origin, **cors_gateway.headers("reader")},
    )
    assert graphql.status_code == 200 and name in graphql.text
    assert graphql.headers["access-control-allow-origin"] == allowed_site.origin

    # Pages the gateway serves itself (/docs) send their own origin: not cross-origin.
    same = httpx.get(f"{base}/v1/collections", headers={"origin": base, **cors_gateway.headers("reader")})
    assert same.status_code == 200 and "access-control-allow-origin" not in same.headers


def test_without_origins_the_app_is_served_unwrapped():
    # Nothing between the ASGI entry and the REST router: the hot path is what it was.
    settings = Settings.from_env({})
    assert CorsPolicy.from_settings(settings) is None
    app = HttpApp(rest=object(), pages=object(), cors=None)
    assert app._http is app.rest and app._other is app.pages


def test_without_origins_configured_nothing_is_added(tmp_path):
    proc = GatewayProcess(tmp_path / "data").start()
    try:
        reply = httpx.get(f"{proc.http_url}/v1/collections", headers={"origin": OTHER})
        assert reply.status_code == 200
        assert not [h for h in reply.headers if h.startswith("access-control-")]
    finally:
        proc.kill()


@pytest.mark.parametrize(
    "env, message",
    [
        ({"CITADEL_CORS_ALLOW_ORIGINS": '["http://127.0.0.1:3000/"]'}, "is not an origin"),
        ({"CITADEL_CORS_ALLOW_ORIGINS": '"http://127.0.0.1:3000"'}, "expected a list"),
        ({"CITADEL_CORS_ALLOW_METHODS": '["FETCH"]'}, "server.cors_allow_methods: 'FETCH' is not one of"),
        ({"CITADEL_CORS_MAX_AGE_SECONDS": "-1"}, "server.cors_max_age_seconds: must be at least 0"),
    ],
)
def test_bad_cors_settings_stop_start_up_naming_the_key(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_preflight_allows_what_grpc_web_and_connect_clients_send(cors_gateway, allowed_site):
    """Browser clients of the two RPC protocols send these on every call, compression
    negotiation included, and read the encodings and status back."""
    url = f"{cors_gateway.proc.http_url}/citadel.vector.v1.VectorService/SearchVectors"
    sent = "connect-protocol-version, connect-timeout-ms, connect-content-encoding, connect-accept-encoding, "
    sent += "grpc-timeout, grpc-encoding, grpc-accept-encoding, x-grpc-web, x-user-agent, authorization"
    asks = {"access-control-request-method": "POST", "access-control-request-headers": sent}
    allowed = httpx.options(url, headers={"origin": allowed_site.origin, **asks})
    assert allowed.status_code == 204, allowed.text
    granted = {h.strip() for h in allowed.headers["access-control-allow-headers"].split(",")}
    assert {h.strip() for h in sent.split(",")} <= granted
    reply = httpx.get(
        f"{cors_gateway.proc.http_url}/v1/collections",
        headers={"origin": allowed_site.origin, **cors_gateway.headers("reader")},
    )
    assert reply.status_code == 200, reply.text
    exposed = {h.strip() for h in reply.headers.get("access-control-expose-headers", "").split(",")}
    assert {"grpc-status", "grpc-message", "grpc-encoding", "connect-content-encoding"} <= exposed, (
        reply.headers
    )
