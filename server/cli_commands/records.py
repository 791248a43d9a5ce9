"""Batch items read one at a time from a JSONL or CSV file, never the whole file at once.

Items are protobuf's (upb) messages, not the SDK's dataclasses: betterproto2 packs each float of
an embedding in Python (about 2,000 384-d items/s against upb's 150,000 on this machine), which
made uploading pre-embedded vectors four times slower than the gateway writes them.

A record has an `id`, a `text` (to embed) or an `embedding` (a JSON array of numbers), and
metadata: the `metadata` object plus every other field (JSONL) or column (CSV, as strings).
Bad records stop the read with the file and line named.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from citadel.batch.v1 import batch_service_pb2 as pb
from citadel.server.cli_commands.common import UsageError

FORMATS = ("jsonl", "csv")
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
ITEM_FIELDS = ("id", "text", "embedding", "metadata")


def format_of(path: Path, given: str | None) -> str:
    if given:
        return given
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(f"{path}: cannot tell the format from the name; pass --format jsonl or --format csv")
    return fmt


class RecordReader:
    """Iterates a file's records as BatchItems; `bytes_read` and `records` follow the reading."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.format = fmt
        try:
            self.size = path.stat().st_size
        except OSError as e:
            raise UsageError(f"{path}: {e.strerror}") from None
        if path.is_dir():
            raise UsageError(f"{path}: is a directory")
        self.bytes_read = 0
        self.records = 0

    def __iter__(self) -> Iterator[pb.BatchItem]:
        with open(self.path, "rb") as f:
            rows = self._jsonl(f) if self.format == "jsonl" else self._csv(f)
            for line, record in rows:
                self.records += 1
                yield self._item(line, record)

    def _lines(self, f) -> Iterator[str]:
        for number, raw in enumerate(f, 1):
            self.bytes_read += len(raw)
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise UsageError(f"{self.path}:{number}: not UTF-8 text") from None

    def _jsonl(self, f) -> Iterator[tuple[int, dict[str, Any]]]:
        for number, text in enumerate(self._lines(f), 1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as e:
                raise UsageError(
                    f"{self.path}:{number}: not valid JSON: {e.msg} (column {e.colno})"
                ) from None
            if not isinstance(record, dict):
                raise UsageError(f"{self.path}:{number}: expected a JSON object, got {type(record).__name__}")
            yield number, record

    def _csv(self, f) -> Iterator[tuple[int, dict[str, Any]]]:
        reader = csv.reader(self._lines(f))
        rows = self._csv_rows(reader)
        header = next(rows, None)
        if header is None:
            return
        header = [h.strip() for h in header]
        if "id" not in header:
            raise UsageError(f"{self.path}:1: the header has no 'id' column (columns: {', '.join(header)})")
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise UsageError(
                    f"{self.path}:{reader.line_num}: has {len(row)} fields, the header has {len(header)}"
                )
            record: dict[str, Any] = dict(zip(header, row, strict=True))
            for name in ("embedding", "metadata"):
                cell = record.get(name)
                if cell is None:
                    continue
                if not cell.strip():
                    del record[name]
                    continue
                try:
                    record[name] = json.loads(cell)
                except json.JSONDecodeError as e:
                    raise UsageError(
                        f"{self.path}:{reader.line_num}: {name}: not valid JSON: {e.msg}"
                    ) from None
            yield reader.line_num, record

    def _csv_rows(self, reader) -> Iterator[list[str]]:
        """The reader's rows, a malformed one reported with its line."""
        while True:
            try:
                yield next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                raise UsageError(f"{self.path}:{reader.line_num}: {e}") from None

    def _item(self, line: int, record: dict[str, Any]) -> pb.BatchItem:
        where = f"{self.path}:{line}"
        item_id = record.get("id")
        if isinstance(item_id, int) and not isinstance(item_id, bool):
            item_id = str(item_id)
        if not isinstance(item_id, str) or not item_id:
            raise UsageError(f"{where}: id: is required (a non-empty string)")
        text = record.get("text", "")
        if not isinstance(text, str):
            raise UsageError(f"{where}: text: expected a string")
        embedding = record.get("embedding", [])
        if not isinstance(embedding, list) or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in embedding
        ):
            raise UsageError(f"{where}: embedding: expected an array of finite numbers")
        metadata = record.get("metadata", {})
        if not isinstance(metadata, dict):
            raise UsageError(f"{where}: metadata: expected a JSON object")
        extra = {k: v for k, v in record.items() if k not in ITEM_FIELDS}
        metadata = {**metadata, **extra}
        item = pb.BatchItem(id=item_id, text=text, embedding=embedding)
        if metadata:
            item.metadata.update(metadata)
        return item
