"""`citadel search` and `citadel embed` against a real gateway (its local default model)."""

from __future__ import annotations

import json
import math

import pytest

from citadel.client import Client, protobuf, vector
from tests.cli.conftest import unique

FILMS = [
    ("dune", [1.0, 0.0, 0.0], {"genre": "scifi", "year": 1965}),
    ("alien", [0.9, 0.1, 0.0], {"genre": "scifi", "year": 1979}),
    ("emma", [0.0, 1.0, 0.0], {"genre": "romance", "year": 1815}),
]


@pytest.fixture(scope="module")
def films(gateway):
    name = unique("films")
    with Client(gateway.grpc_target, timeout=30) as client:
        client.vector.create_collection(
            vector.CreateCollectionRequest(
                collection=vector.Collection(name=name, dimension=3, distance=vector.Distance.COSINE)
            )
        )
        client.vector.upsert_vectors(
            vector.UpsertVectorsRequest(
                collection=name,
                vectors=[
                    vector.Vector(id=i, embedding=e, metadata=protobuf.Struct.from_dict(m))
                    for i, e, m in FILMS
                ],
            )
        )
    return name


def test_search_by_vector(cli, films):
    result = cli("search", films, "--vector", "[1, 0.05, 0]", "--limit", "2")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["SCORE", "ID", "METADATA"]
    assert lines[1].split()[1] == "dune" and lines[2].split()[1] == "alien"
    # Metadata printed as compact JSON; whole numbers (floats in a Struct) stay whole.
    assert json.loads(lines[1].split(None, 2)[2]) == {"genre": "scifi", "year": 1965}
    assert '"year": 1965}' in lines[1] or '"year": 1965,' in lines[1]
    assert lines[-1].startswith("2 results in ")


def test_search_json_with_filter_and_embedding(cli, films):
    flt = json.dumps({"must": [{"field": {"key": "year", "range": {"lt": 1900}}}]})
    result = cli("search", films, "--vector", "[1, 0, 0]", "--filter", flt, "--embedding", "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert [r["id"] for r in doc["results"]] == ["emma"]
    assert doc["results"][0]["metadata"] == {"genre": "romance", "year": 1815}
    assert doc["results"][0]["embedding"] == [0.0, 1.0, 0.0]
    assert doc["queryTimeMs"] >= 0


def test_search_vector_from_file_and_stdin(cli, films, tmp_path):
    path = tmp_path / "query.json"
    path.write_text("[0, 1, 0]")
    assert cli("search", films, "--vector", f"@{path}", "--json").json()["results"][0]["id"] == "emma"
    piped = cli("search", films, "--vector", "-", "--no-metadata", "--limit", "1", stdin="[1, 0, 0]")
    assert piped.code == 0, piped.err
    assert piped.out.splitlines()[0].split() == ["SCORE", "ID"]
    assert piped.out.splitlines()[1].split()[1] == "dune"


def test_search_by_text(cli, sdk):
    name = unique("texts")
    assert cli("collections", "create", name, "--dimension", "384").code == 0
    docs = {
        "bread": "how to bake sourdough bread",
        "ice": "glaciers carve valleys",
        "chess": "opening moves in chess",
    }
    embedded = cli("embed", *docs.values())
    assert embedded.code == 0, embedded.err
    embeddings = [json.loads(line) for line in embedded.out.splitlines()]
    sdk.vector.upsert_vectors(
        vector.UpsertVectorsRequest(
            collection=name,
            vectors=[vector.Vector(id=i, embedding=e) for i, e in zip(docs, embeddings, strict=True)],
        )
    )
    result = cli("search", name, "--text", "baking bread at home", "--model", "general", "--json")
    assert result.code == 0, result.err
    assert [r["id"] for r in result.json()["results"]][0] == "bread"
    assert (
        cli("search", name, "--text", "ice sheets and valleys", "--json").json()["results"][0]["id"] == "ice"
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--vector", "[1, 0"], 2, "--vector: not valid JSON"),
        (["--vector", '["a"]'], 2, "--vector: expected a non-empty JSON array of numbers"),
        (["--vector", "[1, 0]"], 2, "INVALID_ARGUMENT: query_vector: has 2 values but collection"),
        (
            ["--vector", "[1, 0, 0]", "--filter", '{"must": [{"field": {"kee": "x"}}]}'],
            2,
            'no field named "kee"',
        ),
        (["--vector", "[1, 0, 0]", "--filter", "[]"], 2, "--filter: expected a JSON object"),
        (["--vector", "[1, 0, 0]", "--model", "general"], 2, "--model: only applies to --text"),
        (["--vector", "[1, 0, 0]", "--text", "x"], 2, "not allowed with argument"),
    ],
)
def test_search_bad_input(cli, films, args, code, message):
    result = cli("search", films, *args)
    assert result.code == code
    assert message in result.err
    assert result.out == ""


def test_search_missing_collection(cli):
    result = cli("search", "no-such-collection", "--vector", "[1, 0, 0]")
    assert result.code == 3
    assert "NOT_FOUND" in result.err


def test_embed(cli):
    one = cli("embed", "a sentence about rivers")
    assert one.code == 0, one.err
    values = json.loads(one.out)
    assert len(values) == 384 and all(isinstance(v, float) for v in values)
    assert one.err.startswith("model general: 1 x 384 dimensions")

    normalized = json.loads(cli("embed", "a sentence about rivers", "--normalize").out)
    assert math.isclose(math.sqrt(sum(v * v for v in normalized)), 1.0, rel_tol=1e-4)

    many = cli("embed", "first", "second", "third")
    assert [len(json.loads(line)) for line in many.out.splitlines()] == [384, 384, 384]

    piped = cli("embed", "-", stdin="first\n\nsecond\n")
    assert piped.out.splitlines() == many.out.splitlines()[:2]

    doc = cli("embed", "first", "second", "--json").json()
    assert doc["model"] == "general" and doc["dimensions"] == 384
    assert [len(e["values"]) for e in doc["embeddings"]] == [384, 384]


def test_embed_errors(cli):
    unknown = cli("embed", "x", "--model", "no-such-model")
    assert unknown.code == 3
    assert "NOT_FOUND: model: 'no-such-model' is not served" in unknown.err
    bulk_only = cli("embed", "x", "--model", "mixtral")
    assert bulk_only.code == 2
    assert "FAILED_PRECONDITION" in bulk_only.err
    assert cli("embed", "-", stdin="\n").code == 2
