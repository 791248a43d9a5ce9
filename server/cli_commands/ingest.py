"""`citadel ingest FILE`: stream a JSONL or CSV file into a batch job (UploadBatchJob, one slice
of items per message, read as it is sent), then follow the job (WatchBatchJob) to its end.

The upload goes through the SDK client's channel (its key, deadline and exceptions) with protobuf's
serializer for the requests: see records.py for why.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

from citadel.batch.v1 import batch_service_pb2 as pb
from citadel.client import Client, batch, vector
from citadel.server.cli_commands.common import (
    UsageError,
    add_command,
    print_json,
    to_json,
    uncached,
    wants_json,
)
from citadel.server.cli_commands.jobs import follow_to_end
from citadel.server.cli_commands.progress import Progress, UploadMeter
from citadel.server.cli_commands.records import FORMATS, RecordReader, format_of

OPERATIONS = {
    "embed-upsert": batch.Operation.BULK_EMBED_UPSERT,
    "upsert": batch.Operation.BULK_UPSERT,
}
UPLOAD = "/citadel.batch.v1.BatchService/UploadBatchJob"


def register(sub: argparse._SubParsersAction) -> None:
    ingest = add_command(
        sub,
        "ingest",
        "stream a JSONL or CSV file into a collection as a batch job and follow it to the end",
        run,
    )
    ingest.add_argument("file", type=Path, help="records: id, text or embedding, metadata, other fields")
    ingest.add_argument("--collection", "-c", required=True, help="target collection (must exist)")
    ingest.add_argument(
        "--format", choices=FORMATS, help="default: from the file name (.jsonl, .ndjson, .csv)"
    )
    ingest.add_argument(
        "--operation",
        choices=["auto", *OPERATIONS],
        default="auto",
        help="embed-upsert: embed each text; upsert: store each embedding; "
        "auto (default): upsert when the first record has an embedding",
    )
    ingest.add_argument(
        "--model",
        default="",
        help="model for embed-upsert (default: the collection's model when it is bound, else the gateway's default)",
    )
    ingest.add_argument(
        "--no-store-text",
        action="store_true",
        help="embed the texts without keeping them with the vectors (privacy, size)",
    )
    ingest.add_argument("--chunk-size", type=int, default=500, help="items per upload message (default 500)")
    ingest.add_argument(
        "--idempotency-key", default="", help="ingesting again with the same key reuses the job"
    )
    ingest.add_argument(
        "--no-wait", action="store_true", help="print the job id once queued; do not follow it"
    )
    ingest.add_argument("--quiet", "-q", action="store_true", help="no progress output")


def run(args: argparse.Namespace, client: Client) -> int:
    if args.chunk_size < 1:
        raise UsageError(f"--chunk-size: must be at least 1, got {args.chunk_size}")
    reader = RecordReader(args.file, format_of(args.file, args.format))
    records = iter(reader)
    first = next(records, None)
    if first is None:
        raise UsageError(f"{args.file}: holds no records")
    operation = OPERATIONS.get(args.operation) or (
        batch.Operation.BULK_UPSERT if first.embedding else batch.Operation.BULK_EMBED_UPSERT
    )
    # Fail now on a missing collection, not after uploading the whole file.
    uncached(client).vector.get_collection(vector.GetCollectionRequest(name=args.collection))

    progress = Progress(sys.stderr, live=sys.stderr.isatty())
    meter = UploadMeter(progress, reader.size)
    header = pb.UploadBatchJobHeader(
        collection=args.collection,
        operation=operation,
        model=args.model,
        idempotency_key=args.idempotency_key,
    )
    if args.no_store_text:
        header.store_text = False

    def requests() -> Iterator[pb.UploadBatchJobRequest]:
        yield pb.UploadBatchJobRequest(header=header)
        items = itertools.chain([first], records)
        sent = 0
        while chunk := list(itertools.islice(items, args.chunk_size)):
            yield pb.UploadBatchJobRequest(items=pb.BatchItemList(items=chunk))
            sent += len(chunk)
            if not args.quiet:
                meter.update(reader.bytes_read, sent)
        if not args.quiet:
            meter.finish(reader.bytes_read, sent)

    streaming = client.with_options(timeout=None)
    try:
        upload = streaming.call_channel.stream_unary(
            UPLOAD,
            request_serializer=pb.UploadBatchJobRequest.SerializeToString,
            response_deserializer=batch.UploadBatchJobResponse.FromString,
        )
        reply = upload(requests())
    finally:
        progress.close()
    job = reply.job
    if not args.quiet:
        again = " (the idempotency key matched an existing job)" if reply.existing else ""
        progress.message(f"job {job.id} queued: {job.total:,} items into {args.collection}{again}")
    if args.no_wait:
        if wants_json(args):
            print_json(to_json(reply))
        else:
            print(job.id)
        return 0
    return follow_to_end(args, streaming, job.id, None if args.quiet else progress)
