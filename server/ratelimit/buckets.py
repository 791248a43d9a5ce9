"""Token buckets: the limit model and the in-process implementation.

A bucket holds up to `burst` tokens and refills at `rate` per second; a call takes its cost,
one unless its method declares more (rate_limit.cost_field). When short, the caller learns how
long until enough tokens are back (Retry-After).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from citadel.server.auth.principal import parse_tenant


@dataclass(frozen=True)
class Limit:
    rate: float  # tokens per second
    burst: float  # bucket size


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0  # seconds until a token is available


class BucketStore(Protocol):
    async def take(self, key: str, limit: Limit, cost: float = 1) -> Decision:
        """Takes `cost` tokens (at most `limit.burst`) when the bucket holds them."""


class InProcessBuckets:
    """Buckets in this process, bounded in number (least recently used are dropped: a dropped
    bucket comes back full, which errs towards letting a rare caller through)."""

    def __init__(self, max_buckets: int = 100_000) -> None:
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, stamp)
        self._max = max_buckets

    async def take(self, key: str, limit: Limit, cost: float = 1) -> Decision:
        cost = min(cost, limit.burst)  # more than a bucket holds takes a full one
        now = time.monotonic()
        tokens, stamp = self._buckets.pop(key, (limit.burst, now))
        tokens = min(limit.burst, tokens + (now - stamp) * limit.rate)
        if tokens >= cost:
            decision = Decision(True)
            tokens -= cost
        else:
            decision = Decision(False, (cost - tokens) / limit.rate)
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return decision


ROLE_BUCKETS = ("reader", "writer", "admin", "anonymous")  # anonymous: authentication switched off


def parse_limits(raw: dict, key_ids: Collection[str] = ()) -> dict[str, Limit]:
    """Config `rate_limits.buckets`: {"role:<role>" | "key:<id>" | "tenant:<id>": {rate, burst}}.

    A bucket no caller could ever match (an unknown form, a role that does not exist, a key id
    that is not configured in `key_ids`, a tenant id no key or token may carry) is an error
    naming it, not a limit silently never applied."""
    limits: dict[str, Limit] = {}
    for name, spec in raw.items():
        where = f"rate_limits.buckets.{name}"
        kind, _, ident = name.partition(":")
        if kind not in ("role", "key", "tenant") or not ident:
            raise ValueError(f"{where}: name buckets 'role:<role>', 'key:<key id>' or 'tenant:<tenant>'")
        if kind == "role" and ident not in ROLE_BUCKETS:
            raise ValueError(f"{where}: role {ident!r} is not reader, writer, admin or anonymous")
        if kind == "key" and ident not in key_ids:
            configured = ", ".join(sorted(key_ids)) or "none"
            raise ValueError(f"{where}: {ident!r} is not a configured auth.api_keys id (configured: {configured})")
        if kind == "tenant":
            parse_tenant(where, ident)
        if not isinstance(spec, dict) or set(spec) - {"rate", "burst"} or "rate" not in spec:
            raise ValueError(f"{where}: expected {{rate = <per second>, burst = <tokens>}}")
        rate = float(spec["rate"])
        burst = float(spec.get("burst", max(1.0, rate)))
        if rate <= 0 or burst < 1:
            raise ValueError(f"{where}: rate must be > 0 and burst >= 1")
        limits[name] = Limit(rate, burst)
    return limits
