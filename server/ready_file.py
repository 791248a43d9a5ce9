"""The `--ready-file` a supervisor or test waits for: the bound ports, once the gateway is ready."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_ready_file(path: Path, grpc_port: int, http_port: int) -> None:
    """The bound ports as JSON, written atomically (a reader never sees half of it)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "grpc_port": grpc_port, "http_port": http_port}))
    tmp.replace(path)
