"""`--json` prints exactly what the REST API answers for the same call, so a script can switch
between the CLI and curl without changing how it reads the output."""

from __future__ import annotations

import json

import httpx

from tests.cli.conftest import unique


def test_json_output_is_the_rest_json(cli, gateway):
    name = unique("json")
    assert cli("collections", "create", name, "--dimension", "3", "--index", "year:integer").code == 0
    with httpx.Client(base_url=gateway.http_url, timeout=30, headers={"cache-control": "no-cache"}) as http:
        upsert = {"vectors": [{"id": "alien", "embedding": [1, 0, 0], "metadata": {"year": 1979, "t": "x"}}]}
        assert http.post(f"/v1/collections/{name}/vectors:upsert", json=upsert).status_code == 200

        # The CLI prints the collection itself; REST wraps it in GetCollectionResponse.
        collection = json.dumps(
            http.get(f"/v1/collections/{name}").json()["collection"], separators=(",", ":")
        )
        assert cli("collections", "get", name, "--json").out == collection + "\n"
        assert cli("models", "--json").out == http.get("/v1/models").text + "\n"

        search = cli("search", name, "--vector", "[1, 0, 0]", "--limit", "1", "--json", "--no-cache").json()
        body = {"queryVector": [1, 0, 0], "limit": 1, "withMetadata": True}
        rest = http.post(f"/v1/collections/{name}/vectors:search", json=body).json()
        assert {**search, "queryTimeMs": 0} == {**rest, "queryTimeMs": 0}  # timings differ by call
        assert search["results"][0]["metadata"] == {"year": 1979, "t": "x"}  # 1979, not 1979.0
        assert "embedding" not in search["results"][0]  # defaults left out, as REST does
    assert cli("collections", "delete", name).code == 0
