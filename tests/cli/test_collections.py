"""`citadel collections list|get|create|delete` against a real gateway."""

from __future__ import annotations

from citadel.client import vector
from tests.cli.conftest import unique


def test_create_get_list_delete(cli, sdk):
    name = unique()
    created = cli(
        "collections",
        "create",
        name,
        "--dimension",
        "3",
        "--distance",
        "dot",
        "--description",
        "films",
        "--index",
        "year:integer",
        "--index",
        "genre:keyword",
    )
    assert created.code == 0, created.err
    assert created.out.startswith(f"created collection {name}: 3 dimensions, dot, 0 vectors")
    assert "indexed: year (integer), genre (keyword)" in created.out

    stored = sdk.vector.get_collection(vector.GetCollectionRequest(name=name)).collection
    assert (stored.dimension, stored.distance, stored.description) == (3, vector.Distance.DOT, "films")
    assert [(f.key, f.type) for f in stored.indexed_fields] == [
        ("year", vector.FieldType.INTEGER),
        ("genre", vector.FieldType.KEYWORD),
    ]

    sdk.vector.upsert_vectors(
        vector.UpsertVectorsRequest(
            collection=name,
            vectors=[vector.Vector(id="a", embedding=[1, 0, 0]), vector.Vector(id="b", embedding=[0, 1, 0])],
        )
    )
    got = cli("collections", "get", name, "--json")
    assert got.code == 0, got.err
    doc = got.json()
    assert doc["name"] == name and doc["distance"] == "DISTANCE_DOT" and doc["vectorCount"] == "2"
    assert doc["indexedFields"][0] == {"key": "year", "type": "FIELD_TYPE_INTEGER"}
    assert cli("collections", "get", name).out.startswith(f"{name}: 3 dimensions, dot, 2 vectors")

    listed = cli("collections", "list", "--json")
    assert listed.code == 0, listed.err
    assert name in [c["name"] for c in listed.json()["collections"]]
    table = cli("collections", "list").out.splitlines()
    assert table[0].split() == ["NAME", "DIMENSION", "DISTANCE", "CREATED", "DESCRIPTION"]
    assert any(line.split()[:3] == [name, "3", "dot"] and line.endswith("films") for line in table)

    deleted = cli("collections", "delete", name, "--json")
    assert deleted.code == 0, deleted.err
    assert deleted.json() == {"name": name}
    again = cli("collections", "delete", name)
    assert again.code == 3
    assert again.err.strip() == f"citadel: NOT_FOUND: collection '{name}' not found"
    assert again.out == ""


def test_list_pages_through_every_collection(cli, sdk):
    names = sorted(unique("page") for _ in range(5))
    for name in names:
        sdk.vector.create_collection(
            vector.CreateCollectionRequest(
                collection=vector.Collection(name=name, dimension=2, distance=vector.Distance.COSINE)
            )
        )
    listed = cli("collections", "list", "--page-size", "2", "--json").json()["collections"]
    ours = [c["name"] for c in listed if c["name"].startswith("page-")]
    assert [n for n in ours if n in names] == names


def test_create_errors(cli):
    name = unique()
    assert cli("collections", "create", name, "--dimension", "3").code == 0
    taken = cli("collections", "create", name, "--dimension", "3")
    assert taken.code == 2
    assert taken.err.strip() == f"citadel: ALREADY_EXISTS: collection '{name}' already exists"

    bad_dimension = cli("collections", "create", unique(), "--dimension", "0")
    assert bad_dimension.code == 2
    assert "INVALID_ARGUMENT" in bad_dimension.err and "dimension" in bad_dimension.err

    bad_index = cli("collections", "create", unique(), "--dimension", "3", "--index", "year:date")
    assert bad_index.code == 2
    assert "--index 'year:date': expected KEY:TYPE" in bad_index.err

    bad_distance = cli("collections", "create", unique(), "--dimension", "3", "--distance", "manhattan")
    assert bad_distance.code == 2
    assert "invalid choice: 'manhattan'" in bad_distance.err

    missing_flag = cli("collections", "create", unique())
    assert missing_flag.code == 2
    assert "--dimension" in missing_flag.err


def test_get_missing_collection(cli):
    result = cli("collections", "get", "no-such-collection", "--json")
    assert result.code == 3
    assert result.out == ""
    assert "NOT_FOUND" in result.err


def test_create_with_a_layout(cli, sdk):
    name = unique()
    created = cli(
        "collections", "create", name, "--dimension", "3",
        "--hnsw-m", "8", "--hnsw-ef-construct", "64", "--quantization", "none", "--on-disk-vectors", "false",
    )  # fmt: skip
    assert created.code == 0, created.err
    assert (
        "layout: hnsw.m=8, hnsw.efConstruct=64, quantization.type=QUANTIZATION_NONE, onDiskVectors=False"
        in created.out
    )
    stored = sdk.vector.get_collection(vector.GetCollectionRequest(name=name)).collection.layout
    assert (stored.hnsw.m, stored.hnsw.ef_construct, stored.quantization.type, stored.on_disk_vectors) == (
        8, 64, vector.Quantization.NONE, False,
    )  # fmt: skip
    assert stored.shard_number is None  # unset stays unset: the gateway's default


def test_create_with_a_layout_out_of_bounds_names_the_field(cli):
    refused = cli("collections", "create", unique(), "--dimension", "3", "--hnsw-m", "200")
    assert refused.code != 0
    assert "collection.layout.hnsw.m" in refused.err
    # The embedded gateway these tests run keeps one copy: cluster settings need a Qdrant server.
    cluster = cli("collections", "create", unique(), "--dimension", "3", "--shards", "2")
    assert cluster.code != 0
    assert "shard_number" in cluster.err
