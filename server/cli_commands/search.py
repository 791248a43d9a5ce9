"""`citadel search`: nearest vectors to a query vector or to a text embedded by a model."""

from __future__ import annotations

import argparse

from citadel.client import Client, vector
from citadel.server.cli_commands.common import (
    UsageError,
    add_command,
    compact,
    parse_json_arg,
    parse_message,
    parse_vector,
    print_json,
    table,
    to_json,
    uncached,
    wants_json,
)
from citadel.vector.v1 import filter_pb2


def register(sub: argparse._SubParsersAction) -> None:
    search = add_command(sub, "search", "find the vectors closest to a query", run)
    search.add_argument("collection")
    query = search.add_mutually_exclusive_group(required=True)
    query.add_argument(
        "--vector", metavar="JSON", help="query vector as a JSON array (or @FILE, or - for stdin)"
    )
    query.add_argument("--text", help="text to embed with --model and search with")
    search.add_argument("--model", default="", help="model for --text (default: the gateway's default model)")
    search.add_argument("--limit", type=int, default=10, help="most results (1-1000, default 10)")
    search.add_argument("--offset", type=int, default=0, help="skip this many best results first")
    search.add_argument(
        "--filter",
        metavar="JSON",
        help='metadata filter as JSON (or @FILE), e.g. \'{"must": [{"field": {"key": "year", "range": {"lt": 1900}}}]}\'',
    )
    search.add_argument("--score-threshold", type=float, help="drop results worse than this score")
    search.add_argument(
        "--metadata",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="return each result's metadata (default on)",
    )
    search.add_argument("--embedding", action="store_true", help="return each result's embedding")
    search.add_argument("--exact", action="store_true", help="compare with every vector, not the index")
    search.add_argument("--no-cache", action="store_true", help="bypass the gateway's response cache")


def run(args: argparse.Namespace, client: Client) -> int:
    if args.model and args.text is None:
        raise UsageError("--model: only applies to --text")
    request = vector.SearchVectorsRequest(
        collection=args.collection,
        query_vector=parse_vector("--vector", args.vector) if args.vector is not None else [],
        query_text=args.text or "",
        model=args.model,
        limit=args.limit,
        offset=args.offset,
        score_threshold=args.score_threshold,
        with_metadata=args.metadata,
        with_embedding=args.embedding,
        exact=args.exact,
    )
    if args.filter is not None:
        request.filter = parse_message(
            "--filter", parse_json_arg("--filter", args.filter), vector.Filter, filter_pb2.Filter
        )
    reply = (uncached(client) if args.no_cache else client).vector.search_vectors(request)
    if wants_json(args):
        print_json(to_json(reply))
        return 0
    header = (
        ["SCORE", "ID"] + (["METADATA"] if args.metadata else []) + (["EMBEDDING"] if args.embedding else [])
    )
    rows = []
    for hit in reply.results:
        row = [f"{hit.score:.4f}", hit.id]
        if args.metadata:
            row.append(compact(hit.metadata.to_dict()) if hit.metadata else "{}")
        if args.embedding:
            row.append(compact([round(x, 6) for x in hit.embedding]))
        rows.append(row)
    if rows:
        print(table(rows, header))
    noun = "result" if len(rows) == 1 else "results"
    print(f"{len(rows)} {noun} in {reply.query_time_ms:.1f} ms")
    return 0
