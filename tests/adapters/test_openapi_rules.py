"""The bounds the OpenAPI document states are the ones the servicers enforce: for each, read
from the served document, a value just inside is not refused (no 400) and one just outside is
refused with a 400 naming the field, against a real gateway."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest

from tests.support.gateway_process import GatewayProcess

NAME = "rules"


@pytest.fixture(scope="module")
def http(tmp_path_factory):
    proc = GatewayProcess(
        tmp_path_factory.mktemp("openapi-rules") / "data", env={"CITADEL_LOG_LEVEL": "WARNING"}
    ).start()
    try:  # stopped even when seeding fails
        with httpx.Client(base_url=proc.http_url, timeout=30.0) as client:
            collection = {"name": NAME, "dimension": 2, "distance": "DISTANCE_DOT"}
            client.post("/v1/collections", json=collection).raise_for_status()
            yield client
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def document(http):
    return http.get("/openapi.json").json()


def _schema(document, ref: str) -> dict:
    return document["components"]["schemas"][ref]


def _query_param(document, path: str, name: str) -> dict:
    params = document["paths"][path]["get"]["parameters"]
    return next(p["schema"] for p in params if p.get("name") == name)


def _body_property(document, path: str, name: str) -> dict:
    schema = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = _schema(document, schema["$ref"].rsplit("/", 1)[1])
    prop = schema["properties"][name]
    return prop["anyOf"][0] | {k: v for k, v in prop.items() if k != "anyOf"} if "anyOf" in prop else prop


SEARCH = f"/v1/collections/{NAME}/vectors:search"
SCROLL = f"/v1/collections/{NAME}/vectors:scroll"


def _search(http, **fields):
    return http.post(SEARCH, json={"queryVector": [1, 0], **fields})


# (what, how to read the bound from the document, how to send a value)
NUMERIC = [
    (
        "ListCollections pageSize",
        lambda d: _query_param(d, "/v1/collections", "pageSize")["maximum"],
        lambda http, v: http.get("/v1/collections", params={"pageSize": v}),
        "page_size",
    ),
    (
        "ListBatchJobs pageSize",
        lambda d: _query_param(d, "/v1/jobs", "pageSize")["maximum"],
        lambda http, v: http.get("/v1/jobs", params={"pageSize": v}),
        "page_size",
    ),
    (
        "SearchVectors limit",
        lambda d: _body_property(d, "/v1/collections/{collection}/vectors:search", "limit")["maximum"],
        lambda http, v: _search(http, limit=v),
        "limit",
    ),
    (
        "SearchVectors offset",
        lambda d: _body_property(d, "/v1/collections/{collection}/vectors:search", "offset")["maximum"],
        lambda http, v: _search(http, offset=v),
        "offset",
    ),
    (
        "ScrollVectors pageSize",
        lambda d: _body_property(d, "/v1/collections/{collection}/vectors:scroll", "pageSize")["maximum"],
        lambda http, v: http.post(SCROLL, json={"pageSize": v}),
        "page_size",
    ),
]


@pytest.mark.parametrize(("what", "bound", "send", "field"), NUMERIC, ids=[n[0] for n in NUMERIC])
def test_numeric_maximum_matches_the_servicer(http, document, what, bound, send, field):
    maximum = bound(document)
    assert send(http, maximum).status_code == 200
    refused = send(http, maximum + 1)
    assert refused.status_code == 400, refused.text
    assert refused.json()["message"].startswith(field)


def test_negative_page_size_is_refused_as_the_minimum_says(http, document):
    assert _query_param(document, "/v1/collections", "pageSize")["minimum"] == 0
    assert http.get("/v1/collections", params={"pageSize": 0}).status_code == 200
    assert http.get("/v1/collections", params={"pageSize": -1}).status_code == 400


def test_dimension_bounds_match_the_servicer(http, document):
    dimension = _schema(document, "citadel.vector.v1.Collection")["properties"]["dimension"]
    for value, ok in (
        (dimension["minimum"], True),
        (dimension["minimum"] - 1, False),
        (dimension["maximum"] + 1, False),
    ):
        reply = http.post(
            "/v1/collections", json={"name": f"d{value}", "dimension": value, "distance": "DISTANCE_DOT"}
        )
        assert (reply.status_code == 200) is ok, reply.text
        if not ok:
            assert reply.status_code == 400 and "collection.dimension" in reply.json()["message"]


def test_vector_id_length_matches_the_servicer(http, document):
    id_schema = _schema(document, "citadel.vector.v1.Vector")["properties"]["id"]
    longest = id_schema["maxLength"]
    upsert = f"/v1/collections/{NAME}/vectors:upsert"
    ok = http.post(upsert, json={"vectors": [{"id": "x" * longest, "embedding": [1, 0]}]})
    assert ok.status_code == 200, ok.text
    refused = http.post(upsert, json={"vectors": [{"id": "x" * (longest + 1), "embedding": [1, 0]}]})
    assert refused.status_code == 400 and "vectors[0].id" in refused.json()["message"]


def test_collection_name_pattern_matches_the_servicer(http, document):
    pattern = re.compile(_schema(document, "citadel.vector.v1.Collection")["properties"]["name"]["pattern"])
    for name in ("a", "A0_-z", "0" * 63, "-a", "a" * 64, "a.b", "a\n", "é", " a"):
        reply = http.get("/v1/collections/" + quote(name, safe=""))
        expected = 404 if pattern.search(name) else 400  # valid but absent, or refused
        assert reply.status_code == expected, (name, reply.text)


def test_delete_vectors_needs_exactly_one_of_ids_and_filter(http, document):
    path = f"/v1/collections/{NAME}/vectors:delete"
    assert http.post(path, json={"ids": {"ids": ["nope"]}}).status_code == 200
    assert http.post(path, json={}).status_code == 400
    assert http.post(path, json={"ids": {"ids": []}}).status_code == 400  # minItems 1
    both = http.post(path, json={"ids": {"ids": ["a"]}, "filter": {"must": [{"hasId": {"ids": ["a"]}}]}})
    assert both.status_code == 400
    assert http.post(path, json={"filter": {}}).status_code == 400  # no conditions, no allowAll
    assert http.post(path, json={"filter": {}, "allowAll": True}).status_code == 200


# CollectionLayout bounds the embedded engine takes (the cluster ones it refuses whatever their
# value: tests/security/test_collection_layout.py): (schema, property, body for a value).
LAYOUT_BOUNDS = [
    ("HnswLayout", "m", lambda v: {"hnsw": {"m": v}}),
    ("HnswLayout", "efConstruct", lambda v: {"hnsw": {"efConstruct": v}}),
    ("QuantizationLayout", "oversampling", lambda v: {"quantization": {"oversampling": v}}),
]


@pytest.mark.parametrize(("schema", "prop", "layout"), LAYOUT_BOUNDS, ids=[b[1] for b in LAYOUT_BOUNDS])
def test_layout_bounds_match_the_servicer(http, document, schema, prop, layout):
    bounds = _schema(document, f"citadel.vector.v1.{schema}")["properties"][prop]
    low, high = bounds["minimum"], bounds["maximum"]
    step = 1 if bounds["type"][0] == "integer" else 0.5  # a fraction would fail decoding, not the bound
    for value, ok in ((low, True), (high, True), (low - step, False), (high + step, False)):
        body = {
            "name": f"l-{prop.lower()}-{value}".replace(".", "-"),
            "dimension": 2,
            "distance": "DISTANCE_DOT",
        }
        reply = http.post("/v1/collections", json={**body, "layout": layout(value)})
        assert (reply.status_code == 200) is ok, (value, reply.text)
        if not ok:
            assert reply.json()["message"].startswith("collection.layout."), reply.text
