"""How long a cached answer lives, per cache kind: the defaults and `[cache.ttl_seconds]`.

Its own module because settings are parsed at load (server/config.py), before anything of the
cache interceptor, with its chain and metrics, needs to be imported.
"""

from __future__ import annotations

from citadel.options.v1 import options_pb2

DEFAULT_TTL_SECONDS = {
    options_pb2.CACHE_KIND_EMBEDDING: 3600,
    options_pb2.CACHE_KIND_SEARCH: 300,
    options_pb2.CACHE_KIND_METADATA: 1800,
}
KIND_NAMES = {
    options_pb2.CACHE_KIND_EMBEDDING: "embedding",
    options_pb2.CACHE_KIND_SEARCH: "search",
    options_pb2.CACHE_KIND_METADATA: "metadata",
}
# Kinds no RPC declares any more: configs written for them still load, and set nothing.
RETIRED_KIND_NAMES = ("health",)


def ttl_table(overrides: dict) -> dict[int, float]:
    """Seconds per cache kind: defaults, with config `cache.ttl_seconds` {kind name: seconds}."""
    by_name = {v: k for k, v in KIND_NAMES.items()}
    table = dict(DEFAULT_TTL_SECONDS)
    for name, seconds in overrides.items():
        if name not in by_name and name not in RETIRED_KIND_NAMES:
            raise ValueError(f"cache.ttl_seconds.{name}: not one of {', '.join(sorted(by_name))}")
        if not isinstance(seconds, (int, float)) or seconds <= 0:
            raise ValueError(f"cache.ttl_seconds.{name}: must be a positive number of seconds")
        if name in by_name:
            table[by_name[name]] = float(seconds)
    return table
