"""Gateway settings: defaults, then CITADEL_* environment variables, then command-line flags.

Loopback is the default bind address; nothing listens beyond this machine unless asked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path


@dataclass
class Settings:
    host: str = "127.0.0.1"
    grpc_port: int = 8081
    http_port: int = 8000
    data_dir: Path = field(default_factory=lambda: Path(".citadel-data"))
    # Qdrant server or cluster; empty means the embedded default in data_dir.
    qdrant_url: str = ""
    qdrant_api_key: str = field(default="", repr=False)
    # Largest gRPC message either way (large upserts must fit).
    max_message_bytes: int = 64 * 1024 * 1024
    # Seconds in-flight calls get to finish on shutdown.
    grace_seconds: float = 10.0
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        settings = cls()
        for f in fields(cls):
            # QDRANT_URL / QDRANT_API_KEY are honoured too: the names Qdrant users already set.
            raw = env.get(f"CITADEL_{f.name.upper()}")
            if raw is None and f.name.startswith("qdrant_"):
                raw = env.get(f.name.upper())
            if raw is not None:
                setattr(settings, f.name, _parse(f.name, raw, getattr(settings, f.name)))
        return settings


def _parse(name: str, raw: str, current):
    try:
        if isinstance(current, bool):
            return raw.lower() in ("1", "true", "yes", "on")
        if isinstance(current, int):
            return int(raw)
        if isinstance(current, float):
            return float(raw)
        if isinstance(current, Path):
            return Path(raw)
        return raw
    except ValueError:
        raise ValueError(f"CITADEL_{name.upper()}: {raw!r} is not a valid {type(current).__name__}") from None
