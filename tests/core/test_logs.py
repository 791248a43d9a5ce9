"""A log line stays within a few KB whatever a client put into it."""

from __future__ import annotations

import json
import logging
import sys

from citadel.server.logs import MAX_EXCEPTION_CHARS, MAX_FIELD_CHARS, JsonFormatter


def _mutual(depth: int) -> None:
    _other(depth + 1)


def _other(depth: int) -> None:
    _mutual(depth + 1)  # alternating frames: the traceback cannot fold them into one line


def test_huge_messages_fields_and_deep_tracebacks_are_cut_to_head_and_tail():
    try:
        _mutual(0)
    except RecursionError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "citadel.errors", logging.ERROR, __file__, 1, "bad %s", ("x" * 1_000_000,), exc_info
    )
    record.name_given = "n" * 100_000
    record.details = {"values": list(range(100_000))}
    line = JsonFormatter().format(record)
    assert len(line) < 2 * MAX_FIELD_CHARS * 3 + MAX_EXCEPTION_CHARS + 1024
    out = json.loads(line)
    assert out["msg"].startswith("bad xxx") and "characters cut" in out["msg"]
    assert "characters cut" in out["exception"] and out["exception"].rstrip().endswith(
        "RecursionError: maximum recursion depth exceeded"
    )
    assert len(out["name_given"]) <= MAX_FIELD_CHARS + 64


def test_short_records_are_unchanged():
    record = logging.LogRecord("citadel.access", logging.INFO, __file__, 1, "call", (), None)
    record.request_id = "abc"
    record.duration_ms = 1.5
    record.details = {"a": [1, 2]}
    out = json.loads(JsonFormatter().format(record))
    assert (out["msg"], out["request_id"], out["duration_ms"], out["details"]) == (
        "call",
        "abc",
        1.5,
        {"a": [1, 2]},
    )
