"""`citadel embed`: embeddings of texts from a model."""

from __future__ import annotations

import argparse
import json
import sys

from citadel.client import Client, vector
from citadel.server.cli_commands.common import UsageError, add_command, print_json, to_json, wants_json


def register(sub: argparse._SubParsersAction) -> None:
    embed = add_command(sub, "embed", "embed texts with a model; prints one JSON array per text", run)
    embed.add_argument(
        "texts", nargs="+", metavar="TEXT", help="texts to embed; - reads one text per line from stdin"
    )
    embed.add_argument("--model", default="", help="model name (default: the gateway's default model)")
    embed.add_argument("--normalize", action="store_true", help="L2-normalise the embeddings")
    embed.add_argument(
        "--urgent", action="store_true", help="hybrid models: answer now even when over the real-time budget"
    )


def run(args: argparse.Namespace, client: Client) -> int:
    texts = args.texts
    if texts == ["-"]:
        texts = [line.rstrip("\n") for line in sys.stdin if line.strip()]
        if not texts:
            raise UsageError("stdin held no text")
    request = vector.GenerateEmbeddingRequest(model=args.model, normalize=args.normalize, urgent=args.urgent)
    if len(texts) == 1:
        request.text = texts[0]
    else:
        request.texts = texts
    reply = client.vector.generate_embedding(request)
    if wants_json(args):
        print_json(to_json(reply))
        return 0
    if reply.job_id:
        print(f"queued as batch job {reply.job_id}: follow it with `citadel jobs watch {reply.job_id}`")
        return 0
    embeddings = [e.values for e in reply.embeddings]
    print(
        f"model {reply.model}: {len(embeddings)} x {reply.dimensions} dimensions in {reply.processing_time_ms:.1f} ms",
        file=sys.stderr,
    )
    for values in embeddings:
        print(json.dumps([round(x, 7) for x in values]))
    return 0
