"""`citadel collections list|get|create|delete`."""

from __future__ import annotations

import argparse

from citadel.client import Client, vector
from citadel.server.cli_commands.common import (
    UsageError,
    add_command,
    add_group,
    enum_name,
    print_json,
    table,
    to_json,
    uncached,
    wants_json,
)

DISTANCES = {enum_name(d): d for d in vector.Distance if d != vector.Distance.UNSPECIFIED}
FIELD_TYPES = {enum_name(t): t for t in vector.FieldType if t != vector.FieldType.UNSPECIFIED}
READ_CONSISTENCIES = {
    enum_name(r): r for r in vector.ReadConsistency if r != vector.ReadConsistency.UNSPECIFIED
}
QUANTIZATIONS = {enum_name(q): q for q in vector.Quantization if q != vector.Quantization.UNSPECIFIED}


def register(sub: argparse._SubParsersAction) -> None:
    commands = add_group(sub, "collections", "list, show, create and delete collections")

    listing = add_command(commands, "list", "list collections in name order", list_collections)
    listing.add_argument("--page-size", type=int, default=100, help="collections per call (1-1000)")

    get = add_command(commands, "get", "show one collection with its vector count", get_collection)
    get.add_argument("name")

    create = add_command(commands, "create", "create a collection", create_collection)
    create.add_argument("name", help="1-63 letters, digits, '_' or '-'")
    create.add_argument("--dimension", type=int, required=True, help="values per vector (1-65536)")
    create.add_argument("--distance", choices=sorted(DISTANCES), default="cosine", help="default cosine")
    create.add_argument("--description", default="")
    create.add_argument(
        "--index",
        action="append",
        default=[],
        metavar="KEY:TYPE",
        help=f"index a metadata field for filtering; TYPE is one of {', '.join(sorted(FIELD_TYPES))} (repeatable)",
    )
    _add_layout_arguments(create)

    delete = add_command(commands, "delete", "delete a collection and every vector in it", delete_collection)
    delete.add_argument("name")


def list_collections(args: argparse.Namespace, client: Client) -> int:
    collections: list[vector.Collection] = []
    token = ""
    while True:
        page = client.vector.list_collections(
            vector.ListCollectionsRequest(page_size=args.page_size, page_token=token)
        )
        collections += page.collections
        token = page.next_page_token
        if not token:
            break
    if wants_json(args):
        print_json({"collections": [to_json(c) for c in collections]})
        return 0
    if not collections:
        print("no collections")
        return 0
    # ListCollections leaves vector_count unset (counting is per collection: `collections get`).
    rows = [[c.name, str(c.dimension), enum_name(c.distance), _when(c), c.description] for c in collections]
    print(table(rows, ["NAME", "DIMENSION", "DISTANCE", "CREATED", "DESCRIPTION"]))
    return 0


def get_collection(args: argparse.Namespace, client: Client) -> int:
    collection = (
        uncached(client).vector.get_collection(vector.GetCollectionRequest(name=args.name)).collection
    )
    _show(args, collection)
    return 0


def create_collection(args: argparse.Namespace, client: Client) -> int:
    indexed = []
    for spec in args.index:
        key, _, kind = spec.rpartition(":")
        if not key or kind not in FIELD_TYPES:
            raise UsageError(
                f"--index {spec!r}: expected KEY:TYPE with TYPE one of {', '.join(sorted(FIELD_TYPES))}"
            )
        indexed.append(vector.IndexedField(key=key, type=FIELD_TYPES[kind]))
    collection = client.vector.create_collection(
        vector.CreateCollectionRequest(
            collection=vector.Collection(
                name=args.name,
                dimension=args.dimension,
                distance=DISTANCES[args.distance],
                description=args.description,
                indexed_fields=indexed,
                layout=_layout(args),
            )
        )
    ).collection
    _show(args, collection, "created collection ")
    return 0


def _add_layout_arguments(create: argparse.ArgumentParser) -> None:
    """The collection's own layout; what is left out takes the gateway's defaults, and the
    gateway checks the bounds (the cluster settings need a Qdrant server: QDRANT_URL)."""
    layout = create.add_argument_group("layout (unset: the gateway's defaults)")
    layout.add_argument("--shards", type=int, help="shards on a Qdrant cluster (1-256)")
    layout.add_argument("--replicas", type=int, help="copies of each shard on a Qdrant cluster (1-16)")
    layout.add_argument("--write-consistency", type=int, help="copies that acknowledge a write (1-replicas)")
    layout.add_argument("--read-consistency", choices=sorted(READ_CONSISTENCIES))
    layout.add_argument("--hnsw-m", type=int, help="HNSW edges per node (4-128)")
    layout.add_argument("--hnsw-ef-construct", type=int, help="HNSW build candidates (4-1024)")
    layout.add_argument("--quantization", choices=sorted(QUANTIZATIONS))
    layout.add_argument("--oversampling", type=float, help="quantized candidates per result (1-16)")
    layout.add_argument(
        "--on-disk-vectors", choices=("true", "false"), help="keep the original vectors on disk"
    )


def _layout(args: argparse.Namespace) -> vector.CollectionLayout | None:
    hnsw = vector.HnswLayout(m=args.hnsw_m, ef_construct=args.hnsw_ef_construct)
    quantization = vector.QuantizationLayout(
        type=QUANTIZATIONS.get(args.quantization, vector.Quantization.UNSPECIFIED),
        oversampling=args.oversampling,
    )
    layout = vector.CollectionLayout(
        shard_number=args.shards,
        replication_factor=args.replicas,
        write_consistency_factor=args.write_consistency,
        read_consistency=READ_CONSISTENCIES.get(args.read_consistency, vector.ReadConsistency.UNSPECIFIED),
        hnsw=hnsw if hnsw != vector.HnswLayout() else None,
        quantization=quantization if quantization != vector.QuantizationLayout() else None,
        on_disk_vectors=None if args.on_disk_vectors is None else args.on_disk_vectors == "true",
    )
    return layout if layout != vector.CollectionLayout() else None


def delete_collection(args: argparse.Namespace, client: Client) -> int:
    reply = client.vector.delete_collection(vector.DeleteCollectionRequest(name=args.name))
    if wants_json(args):
        print_json(to_json(reply))
    else:
        print(f"deleted collection {reply.name}")
    return 0


def _show(args: argparse.Namespace, c: vector.Collection, prefix: str = "") -> None:
    if wants_json(args):
        print_json(to_json(c))
        return
    print(f"{prefix}{c.name}: {c.dimension} dimensions, {enum_name(c.distance)}, {c.vector_count} vectors")
    if c.indexed_fields:
        print("indexed: " + ", ".join(f"{f.key} ({enum_name(f.type)})" for f in c.indexed_fields))
    if c.layout:
        print("layout: " + ", ".join(f"{k}={v}" for k, v in _flat(to_json(c.layout))))
    if c.description:
        print(f"description: {c.description}")
    if c.created_at:
        print(f"created: {_when(c)}")


def _flat(doc: dict, prefix: str = "") -> list[tuple[str, object]]:
    """`{'hnsw': {'m': 8}}` as `[('hnsw.m', 8)]`: one line for the chosen settings."""
    pairs: list[tuple[str, object]] = []
    for key, value in doc.items():
        if isinstance(value, dict):
            pairs += _flat(value, f"{prefix}{key}.")
        else:
            pairs.append((prefix + key, value))
    return pairs


def _when(c: vector.Collection) -> str:
    return c.created_at.strftime("%Y-%m-%d %H:%M:%S") if c.created_at else ""
