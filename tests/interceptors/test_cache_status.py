"""The standard `Cache-Control: no-cache` request header bypasses the cache on REST, and every
cacheable call says what the cache did (RFC 9211 `Cache-Status`): an HTTP header on REST, the
same key in the gRPC response metadata."""

from __future__ import annotations

import uuid

import httpx

from citadel.vector.v1 import vector_service_pb2 as pb


def _rest(gateway):
    return httpx.Client(base_url=gateway.http_url, timeout=30)


def test_rest_search_says_miss_then_hit_and_no_cache_bypasses(gateway):
    name = f"cs-{uuid.uuid4().hex[:8]}"
    with _rest(gateway) as http:
        assert (
            http.post(
                "/v1/collections", json={"name": name, "dimension": 2, "distance": "DISTANCE_COSINE"}
            ).status_code
            == 200
        )
        upsert = {"vectors": [{"id": "a", "embedding": [1, 0]}]}
        assert http.post(f"/v1/collections/{name}/vectors:upsert", json=upsert).status_code == 200
        search = f"/v1/collections/{name}/vectors:search"
        body = {"queryVector": [1, 0]}
        assert http.post(search, json=body).headers["cache-status"] == "citadel; fwd=miss"
        assert http.post(search, json=body).headers["cache-status"] == "citadel; hit"
        bypassed = http.post(search, json=body, headers={"cache-control": "no-cache"})
        assert bypassed.status_code == 200 and bypassed.headers["cache-status"] == "citadel; fwd=bypass"
        # Not cacheable: no header.
        assert "cache-status" not in http.post(search.replace(":search", ":upsert"), json=upsert).headers
        http.delete(f"/v1/collections/{name}")


def test_embeddings_per_text_status_and_the_plain_http_header(gateway):
    """Embeddings are cached per text: the plain HTTP `Cache-Control` header is honoured (not only
    `Grpc-Metadata-cache-control`), and a request with some of its texts cached says partial."""
    text = f"cache status {uuid.uuid4().hex}"
    with _rest(gateway) as http:
        first = http.post("/v1/embeddings", json={"text": text})
        assert first.headers["cache-status"] == "citadel; fwd=miss"
        assert http.post("/v1/embeddings", json={"text": text}).headers["cache-status"] == "citadel; hit"
        again = http.post("/v1/embeddings", json={"text": text}, headers={"Cache-Control": "no-cache"})
        assert again.headers["cache-status"] == "citadel; fwd=bypass"
        partial = http.post("/v1/embeddings", json={"texts": [text, text + " more"]})
        assert partial.headers["cache-status"] == "citadel; fwd=partial"


def test_grpc_response_metadata_carries_cache_status(gateway):
    text = f"grpc cache status {uuid.uuid4().hex}"
    embed = gateway.stub().GenerateEmbedding
    statuses = []
    for metadata in ((), (), (("cache-control", "no-cache"),)):
        _, call = embed.with_call(pb.GenerateEmbeddingRequest(text=text), metadata=metadata, timeout=30)
        trailers = dict(call.trailing_metadata())
        statuses.append(trailers["cache-status"])
    assert statuses == ["citadel; fwd=miss", "citadel; hit", "citadel; fwd=bypass"]
