"""`citadel models` and `citadel status` against a real gateway."""

from __future__ import annotations

from citadel.client import vector


def test_models(cli, sdk):
    expected = sdk.vector.list_models(vector.ListModelsRequest())
    result = cli("models")
    assert result.code == 0, result.err
    models_table, backends_table = result.out.split("\n\n")
    rows = [line.split() for line in models_table.splitlines()]
    assert rows[0] == ["MODEL", "PATTERN", "DIMENSIONS", "STRATEGY", "BACKENDS"]
    by_name = {row[0]: row for row in rows[1:]}
    assert set(by_name) == {m.name for m in expected.models}
    assert by_name[expected.default_model][1] == "(default)"
    assert by_name["mixtral"][1:3] == ["bulk_only", "384"]
    backend_rows = [line.split() for line in backends_table.splitlines()]
    assert backend_rows[0][:4] == ["MODEL", "BACKEND", "PROVIDER", "URL"]
    general = next(r for r in backend_rows if r[0] == "general")
    assert general[1:6] == ["local", "local", "-", "healthy", "closed"]

    doc = cli("models", "--json").json()
    assert doc["defaultModel"] == expected.default_model
    assert {m["name"]: m["pattern"] for m in doc["models"]}["openchat"] == "INTEGRATION_PATTERN_HYBRID"
    assert doc["models"][0]["backends"][0]["circuit"] == "CIRCUIT_STATE_CLOSED"


def test_status(cli):
    result = cli("status")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("citadel ") and ": ready, up " in lines[0]
    assert "worker" not in lines[0]  # a lone gateway: nothing to say about workers
    assert lines[1].split()[:3] == ["COMPONENT", "STATE", "SINCE"]
    states = {line.split()[0]: line.split()[1] for line in lines[2:]}
    assert {"store", "jobs", "grpc", "http"} <= set(states)
    assert set(states.values()) == {"running"}

    doc = cli("status", "--json").json()
    assert doc["ready"] is True and doc["uptimeSeconds"] > 0
    assert doc["workers"] == 1 and doc.get("worker", 0) == 0
    assert {c["name"] for c in doc["components"]} == set(states)
    assert all(c["state"] == "COMPONENT_STATE_RUNNING" for c in doc["components"])
