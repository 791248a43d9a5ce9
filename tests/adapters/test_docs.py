"""OpenAPI and SDL derived from the protos, their committed copies, and the /docs and
/graphql pages rendered by headless Chromium with no network."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from citadel.adapters import graphql_schema, openapi
from citadel.adapters.descriptions import Descriptions
from citadel.server.descriptors import SERVICES, descriptor_set
from citadel.server.methods import method_specs
from tests.support.chromium import chromium, chromium_dom

ROOT = Path(__file__).resolve().parents[2]


def test_committed_openapi_and_sdl_match_the_protos():
    specs = method_specs(SERVICES)
    docs = Descriptions([descriptor_set()])
    generated = ROOT / "generated" / "citadel"
    assert (generated / "openapi.json").read_text() == openapi.render(openapi.build(specs, docs))
    assert (generated / "schema.graphql").read_text() == graphql_schema.sdl(
        graphql_schema.build_schema(specs, docs)
    )


def test_served_openapi_is_the_committed_one(gateway):
    """The gateway serves no client-streaming RPC over HTTP, so the committed document must not
    list one either (it once offered POST .../UploadBatchJob, which answered 404)."""
    served = httpx.get(f"{gateway.http_url}/openapi.json", timeout=30).json()
    committed = json.loads((ROOT / "generated" / "citadel" / "openapi.json").read_text())
    assert served == committed
    assert not any("UploadBatchJob" in path for path in committed["paths"])


def test_served_openapi_documents_the_test_service_from_its_comments(http):
    doc = http.get("/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    get_book = doc["paths"]["/v1/{name}"]["get"]
    assert get_book["operationId"] == "EchoService_GetBook"
    assert get_book["summary"] == "Reads a book by its resource name, matched by a multi-segment template."
    name = next(p for p in get_book["parameters"] if p.get("name") == "name")
    assert "Matches `shelves/*/books/*`" in name["description"]
    assert doc["paths"]["/v1/archive/{name}:read"]["get"]["operationId"] == "EchoService_GetBook_2"
    echo_get = doc["paths"]["/v1/echo/{id}"]["get"]
    params = {p.get("name"): p for p in echo_get["parameters"]}
    assert params["labels"]["style"] == "deepObject"
    assert params["tags"]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert params["nested.big"]["schema"]["format"] == "int64"
    assert {"$ref": "#/components/parameters/FloatEncoding"} in echo_get["parameters"]
    stream = doc["paths"]["/v1/count/{to}"]["get"]["responses"]["200"]["content"]
    assert set(stream) == {"application/x-ndjson", "text/event-stream"}
    schemas = doc["components"]["schemas"]
    request = schemas["citadel.testing.v1.EchoRequest"]
    # int64: written as a string, read as a string or a number; null is "not set"
    assert request["properties"]["count"]["type"] == ["string", "integer", "null"]
    floats = request["properties"]["embedding"]["anyOf"][0]  # or null
    assert floats["oneOf"][1]["contentEncoding"] == "base64"
    assert "At most one of `choiceText`, `choiceNumber`, `choiceNested`" in request["description"]
    # by name, or by number in requests
    assert schemas["citadel.testing.v1.Color"]["enum"] == ["COLOR_UNSPECIFIED", "COLOR_BLUE", "COLOR_GREEN", 0, 1, 2]
    collection = schemas["citadel.vector.v1.Collection"]
    assert collection["properties"]["vectorCount"]["readOnly"] is True  # OUTPUT_ONLY
    assert "dimension" in collection["required"]  # REQUIRED
    search = doc["paths"]["/v1/collections/{collection}/vectors:search"]["post"]
    assert "collection" not in search["requestBody"]["content"]["application/json"]["schema"]["properties"]


def test_generated_test_service_docs_are_committed():
    generated = ROOT / "tests" / "generated"
    assert '"EchoService_Echo"' in (generated / "openapi.json").read_text()
    assert "count(" in (generated / "schema.graphql").read_text()


def chromium_screenshot(url: str, out: Path, profile: Path) -> str:
    """Loads the page in headless Chromium (networking to anything but loopback refused) and
    returns the rendered DOM; the screenshot lands in `out`."""
    chromium(url, profile, f"--screenshot={out}")
    return chromium_dom(url, profile)


def test_docs_and_graphiql_render_offline_in_chromium(echo_gateway, tmp_path):
    docs_png = tmp_path / "docs.png"
    dom = chromium_screenshot(f"{echo_gateway.http_url}/docs", docs_png, tmp_path / "profile-docs")
    assert docs_png.stat().st_size > 10_000
    assert "swagger-ui" in dom and "EchoService" in dom and "VectorService" in dom
    assert "/v1/collections/{collection}/vectors:search" in dom

    graphiql_png = tmp_path / "graphiql.png"
    dom = chromium_screenshot(f"{echo_gateway.http_url}/graphql", graphiql_png, tmp_path / "profile-graphiql")
    assert graphiql_png.stat().st_size > 10_000
    assert "graphiql-container" in dom  # React rendered GraphiQL (the placeholder text is gone)
    assert "Loading GraphiQL" not in dom
