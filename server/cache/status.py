"""What a cacheable call tells its caller about the cache (RFC 9211 `Cache-Status`), and how a
caller asks for no cache (`Cache-Control: no-cache`, an HTTP header or gRPC metadata).

The status is a response metadata entry: a header on REST, initial metadata on gRPC.
"""

from __future__ import annotations

from collections.abc import Mapping

CACHE_STATUS = "cache-status"

HIT = "hit"
MISS = "fwd=miss"
COLLAPSED = "fwd=miss; collapsed"  # waited on an identical call's fetch
PARTIAL = "fwd=partial"  # some of its texts were cached
BYPASS = "fwd=bypass"  # asked not to use the cache
UNAVAILABLE = 'fwd=bypass; detail="cache unavailable"'  # the backend failed: served uncached


def asks_no_cache(metadata: Mapping[str, str]) -> bool:
    return "no-cache" in metadata.get("cache-control", "")


def cache_status(outcome: str) -> str:
    """The header value for `outcome` (one of the constants above)."""
    return f"citadel; {outcome}"
