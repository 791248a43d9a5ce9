"""gzip on port 8000 (adapters/compression.py), against a real gateway: replies of at least
server.gzip_min_bytes are compressed when the client accepts gzip, and only then; gzip request
bodies are read by REST and GraphQL with the body limits applied to the decompressed size."""

from __future__ import annotations

import gzip

import httpx
import pytest

from tests.support.gateway_process import GatewayProcess

BODY_LIMIT = 1 << 20
GZIP_MIN_BYTES = 2048
NAME = "squeeze"
DIMENSION = 64


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    proc = GatewayProcess(
        tmp_path_factory.mktemp("compression") / "data",
        env={
            "CITADEL_REST_BODY_BYTES": str(BODY_LIMIT),
            "CITADEL_GRAPHQL_BODY_BYTES": str(BODY_LIMIT),
            "CITADEL_GZIP_MIN_BYTES": str(GZIP_MIN_BYTES),
            "CITADEL_LOG_LEVEL": "WARNING",
        },
    ).start()
    try:  # stopped even when seeding fails
        with httpx.Client(base_url=proc.http_url, timeout=30.0) as client:
            collection = {"name": NAME, "dimension": DIMENSION, "distance": "DISTANCE_DOT"}
            client.post("/v1/collections", json=collection).raise_for_status()
            vectors = [{"id": f"v{i}", "embedding": [i / 100 + j / 1000 for j in range(DIMENSION)]} for i in range(20)]
            client.post(f"/v1/collections/{NAME}/vectors:upsert", json={"vectors": vectors}).raise_for_status()
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def http(gateway):
    with httpx.Client(base_url=gateway.http_url, timeout=30.0) as client:
        yield client


SCROLL = (f"/v1/collections/{NAME}/vectors:scroll", {"withEmbedding": True})  # ~25 KB of JSON
GRAPHQL_SCROLL = {
    "query": f'{{ scrollVectors(collection: "{NAME}", withEmbedding: true) {{ vectors {{ id embedding }} }} }}'
}


def _post(http, path, body, accept_encoding):
    return http.post(path, json=body, headers={"accept-encoding": accept_encoding})


@pytest.mark.parametrize("accept", ["gzip", "gzip, deflate, br", "br;q=1.0, gzip;q=0.5", "*"])
def test_large_rest_reply_is_gzipped_when_accepted(http, accept):
    reply = _post(http, *SCROLL, accept)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in reply.headers["vary"].lower()
    assert int(reply.headers["content-length"]) < len(reply.content) / 2  # httpx decoded it
    assert len(reply.json()["vectors"]) == 20


@pytest.mark.parametrize("accept", ["identity", "gzip;q=0", "*;q=0", "br", "gzip;q=0, *"])
def test_large_rest_reply_is_plain_when_gzip_is_not_accepted(http, accept):
    reply = _post(http, *SCROLL, accept)
    assert reply.status_code == 200, reply.text
    assert "content-encoding" not in reply.headers
    assert "accept-encoding" in reply.headers["vary"].lower()  # a cache must not mix the two
    assert int(reply.headers["content-length"]) == len(reply.content)


def test_small_reply_is_never_gzipped(http):
    reply = http.get(f"/v1/collections/{NAME}", headers={"accept-encoding": "gzip"})
    assert reply.status_code == 200, reply.text
    assert len(reply.content) < GZIP_MIN_BYTES
    assert "content-encoding" not in reply.headers


def test_large_graphql_reply_is_gzipped_when_accepted(http):
    reply = http.post("/graphql", json=GRAPHQL_SCROLL, headers={"accept-encoding": "gzip"})
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-encoding"] == "gzip"
    assert len(reply.json()["data"]["scrollVectors"]["vectors"]) == 20
    plain = http.post("/graphql", json=GRAPHQL_SCROLL, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.json() == reply.json()


def test_error_replies_and_streams_keep_their_form(http):
    """A 404 Status is small: plain. A stream (NDJSON) is written as it goes: never gzipped."""
    missing = http.get("/v1/collections/nope", headers={"accept-encoding": "gzip"})
    assert missing.status_code == 404 and "content-encoding" not in missing.headers


def _gzip_post(http, path, payload: bytes, **headers):
    return http.post(
        path,
        content=gzip.compress(payload),
        headers={"content-type": "application/json", "content-encoding": "gzip", **headers},
    )


def test_gzip_rest_request_body_is_read(http):
    vectors = [{"id": f"g{i}", "embedding": [0.5] * DIMENSION} for i in range(50)]
    body = httpx.Request("POST", "/", json={"vectors": vectors}).read()
    reply = _gzip_post(http, f"/v1/collections/{NAME}/vectors:upsert", body)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"upsertedCount": 50}
    got = http.get(f"/v1/collections/{NAME}/vectors/g49")
    assert got.status_code == 200


def test_gzip_graphql_request_body_is_read(http):
    body = httpx.Request("POST", "/", json={"query": f'{{ getCollection(name: "{NAME}") {{ collection {{ name }} }} }}'}).read()
    reply = _gzip_post(http, "/graphql", body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["data"]["getCollection"]["collection"]["name"] == NAME


ZIP_BOMB = gzip.compress(b"0" * 10_000_000)  # 10 MB of zeros, ~10 KB sent


@pytest.mark.parametrize(
    ("path", "setting"),
    [(f"/v1/collections/{NAME}/vectors:upsert", "limits.rest_body_bytes"), ("/graphql", "limits.graphql_body_bytes")],
)
def test_zip_bomb_is_refused_at_the_decompressed_limit(http, path, setting):
    assert len(ZIP_BOMB) < 20_000
    reply = http.post(
        path, content=ZIP_BOMB, headers={"content-type": "application/json", "content-encoding": "gzip"}
    )
    assert reply.status_code == 413, reply.text
    assert f"{setting} ({BODY_LIMIT} bytes)" in reply.text
    assert http.get("/healthz").status_code == 200


@pytest.mark.parametrize("path", [f"/v1/collections/{NAME}/vectors:upsert", "/graphql"])
def test_unknown_content_encoding_is_415(http, path):
    reply = http.post(path, content=b"{}", headers={"content-type": "application/json", "content-encoding": "br"})
    assert reply.status_code == 415, reply.text
    assert "Content-Encoding 'br' is not supported" in reply.text


@pytest.mark.parametrize("payload", [b"not gzip at all", gzip.compress(b'{"vectors": []}')[:-6]])
def test_broken_gzip_is_400(http, payload):
    reply = http.post(
        f"/v1/collections/{NAME}/vectors:upsert",
        content=payload,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert reply.status_code == 400, reply.text
    assert "not valid gzip" in reply.json()["message"]
