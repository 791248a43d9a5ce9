"""Structured logging: one JSON object per line, with any `extra` fields of the record.

A line is bounded whatever went into it: messages and fields can carry a client's values
(an exception's text, a name), and a traceback can be a thousand frames deep, so each text
is cut to its head and tail and a line stays within a few KB.
"""

from __future__ import annotations

import json
import logging
import time

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
MAX_FIELD_CHARS = 2048  # a message or any extra field
MAX_EXCEPTION_CHARS = 6144  # a traceback: its first frames and, mostly, where it ended


def bounded(text: str, limit: int = MAX_FIELD_CHARS, head_share: float = 0.5) -> str:
    """`text`, or its head and tail with how much was cut between them."""
    if len(text) <= limit:
        return text
    head = int(limit * head_share)
    tail = limit - head
    return f"{text[:head]} …[{len(text) - head - tail} characters cut]… {text[-tail:]}"


def _field(value):
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
        return value if len(text) <= MAX_FIELD_CHARS else bounded(text)
    return bounded(value if isinstance(value, str) else str(value))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": bounded(record.getMessage()),
        }
        out.update({k: _field(v) for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            out["exception"] = bounded(self.formatException(record.exc_info), MAX_EXCEPTION_CHARS, 0.25)
        return json.dumps(out)


def configure(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
