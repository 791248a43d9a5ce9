"""Clients nobody here wrote, against gRPC-Web and Connect on port 8000: @connectrpc/connect-node
over both its Connect (JSON and binary) and gRPC-Web transports, and @connectrpc/connect-web in
headless Chromium on a page from another loopback origin (CORS), both over code that
@bufbuild/protoc-gen-es generates from proto/ with buf at test time. Each runs create, upsert,
search, a NOT_FOUND and a WatchBatchJob stream to its end; connect-node once more with gzip
both ways."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adapters.test_cors import PageServer, page_server
from tests.conftest import require_binary
from tests.security.conftest import Secured, start_secured
from tests.support.chromium import open_until
from tests.support.gateway_process import GatewayProcess

HERE = Path(__file__).parent / "connect"
ROOT = HERE.parents[2]
BUF = Path(sys.executable).parent / "buf"  # installed into the venv by `make dev`


@pytest.fixture(scope="module")
def client_project() -> Path:
    """node_modules installed (npm ci, as CI does), gen/ generated from proto/, the page bundled."""
    require_binary("node", "apt-get install -y nodejs npm")
    if not (HERE / "node_modules" / "@connectrpc" / "connect-node").exists():
        npm = require_binary("npm", "apt-get install -y npm")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, capture_output=True, timeout=300
        )
    buf = str(BUF) if BUF.exists() else require_binary("buf", "make dev (installs buf into .venv/bin)")
    shutil.rmtree(HERE / "gen", ignore_errors=True)
    subprocess.run(
        [
            buf,
            "generate",
            "--template",
            "tests/interop/connect/buf.gen.yaml",
            "-o",
            "tests/interop/connect/gen",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    subprocess.run(
        [
            str(HERE / "node_modules" / ".bin" / "esbuild"),
            "browser.mjs",
            "--bundle",
            "--format=esm",
            "--target=es2022",
            "--outfile=dist/browser.js",
        ],
        cwd=HERE,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return HERE


def check_calls(out: dict, protocol: str) -> None:
    assert out["upserted"] == 2, protocol
    assert (out["top"], out["topLang"]) == ("north", "js"), protocol
    assert out["error"]["code"] == "NotFound" and "not found" in out["error"]["message"], protocol
    states = [e["state"] for e in out["events"]]
    assert states[-1] == "SUCCEEDED" and out["events"][-1]["done"] == 250, protocol


def test_connect_node_over_connect_and_grpc_web(gateway, client_project):
    node = require_binary("node", "apt-get install -y nodejs npm")
    done = subprocess.run(
        [node, "node-client.mjs", gateway.http_url],
        cwd=client_project,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for protocol in ("connect", "grpcWeb", "connectBinary"):
        check_calls(out[protocol], protocol)


@pytest.fixture(scope="module")
def compressing_gateway(tmp_path_factory) -> Iterator[GatewayProcess]:
    """server.gzip_min_bytes = 0: every reply the client accepts gzip for is compressed."""
    proc = GatewayProcess(
        tmp_path_factory.mktemp("connect-gzip") / "data", env={"CITADEL_GZIP_MIN_BYTES": "0"}
    ).start()
    yield proc
    proc.stop()


def test_connect_node_with_gzip_both_ways(compressing_gateway, client_project):
    """Requests gzip-compressed by connect-node (no threshold), replies compressed by the
    gateway: unary bodies, stream envelopes (end of stream included) and gRPC-Web messages, all
    read by the stock client."""
    node = require_binary("node", "apt-get install -y nodejs npm")
    done = subprocess.run(
        [node, "node-client.mjs", compressing_gateway.http_url, "gzip"],
        cwd=client_project,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for protocol in ("connect", "grpcWeb", "connectBinary"):
        check_calls(out[protocol], protocol)
    assert set(out["replyEncodings"]) >= {
        "content-encoding: gzip",
        "connect-content-encoding: gzip",
        "grpc-encoding: gzip",
    }, out["replyEncodings"]


@pytest.fixture(scope="module")
def page_site() -> Iterator[PageServer]:
    with page_server() as site:
        yield site


@pytest.fixture(scope="module")
def cors_gateway(tmp_path_factory, page_site) -> Iterator[Secured]:
    gateway = start_secured(
        tmp_path_factory.mktemp("connect-web"), f'[server]\ncors_allow_origins = ["{page_site.origin}"]\n'
    )
    yield gateway
    gateway.proc.stop()


def test_connect_web_in_a_browser_from_another_origin(cors_gateway, page_site, client_project, tmp_path):
    script = (client_project / "dist" / "browser.js").read_text(encoding="utf-8")
    settings = json.dumps({"baseUrl": cors_gateway.proc.http_url, "key": cors_gateway.creds.keys["admin"]})
    page_site.html = (
        '<!doctype html><html><body><pre id="out">pending</pre>'
        f"<script>window.CITADEL = {settings};</script>"
        f'<script type="module">{script}</script></body></html>'
    )
    page_site.reported.clear()
    open_until(page_site.origin + "/", tmp_path / "profile", page_site.reported)  # real time
    out = json.loads(page_site.posted)
    assert "failed" not in out, out
    for protocol in ("connect", "grpcWeb"):
        check_calls(out[protocol], protocol)
