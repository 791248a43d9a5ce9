"""With authentication on, /docs stays usable: the pages load without credentials, the
OpenAPI document declares the bearer scheme (Swagger UI's "Authorize"), and every operation
states the role it needs, the same one the gateway enforces."""

from __future__ import annotations

import httpx

from citadel.server.auth.principal import ROLE_NAMES
from citadel.server.descriptors import SERVICES
from citadel.server.methods import method_specs
from tests.adapters.test_docs import chromium_screenshot


def test_openapi_declares_bearer_auth_and_each_operations_role(secured):
    doc = httpx.get(f"{secured.proc.http_url}/openapi.json", timeout=30).json()  # no credentials needed
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"],
    }
    assert doc["security"] == [{"bearer": []}]
    roles = {
        f"{s.descriptor.containing_service.name}_{s.name}": ROLE_NAMES[s.access.role]
        for s in method_specs(SERVICES)
    }
    operations = [op for item in doc["paths"].values() for op in item.values()]
    assert operations
    for op in operations:
        base = op["operationId"].rsplit("_", 1)[0] if op["operationId"][-1].isdigit() else op["operationId"]
        assert op["x-citadel-role"] == roles[base], op["operationId"]
        assert op["description"].endswith(f"Needs role: {roles[base]}.")


def test_docs_render_with_an_authorize_button_when_auth_is_on(secured, tmp_path):
    png = tmp_path / "docs.png"
    dom = chromium_screenshot(f"{secured.proc.http_url}/docs", png, tmp_path / "profile")
    assert "swagger-ui" in dom and "VectorService" in dom
    assert "authorize" in dom.lower()  # the scheme turned Swagger UI's Authorize button on
    # What "Authorize" then sends: the bearer header, which the REST routes accept.
    listed = httpx.get(
        f"{secured.proc.http_url}/v1/collections", headers=secured.headers("reader"), timeout=30
    )
    assert listed.status_code == 200
    assert httpx.get(f"{secured.proc.http_url}/v1/collections", timeout=30).status_code == 401
