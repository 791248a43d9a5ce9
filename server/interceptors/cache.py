"""Response cache for the RPCs whose cache option opts in.

What a cached answer depends on is read from the method's options, never from field names:
- Key: method, tenant and the request's deterministic serialization, under the scope of the
  collection the access option's `collection_field` names; writes bump that collection's
  version (their option says `invalidates_collection`), so a read after a write never sees
  the old answer. A `model_field` adds what that model name resolves to now.
- Concurrent identical misses are coalesced (single flight).
- `cache-control: no-cache` bypasses it. A failing backend is counted and logged, never fatal.
- Every cached call answers a `cache-status` (RFC 9211) in its response metadata (an HTTP
  header on REST): `citadel; hit`, `citadel; fwd=miss` (`; collapsed` when it waited on an
  identical call's fetch) or `citadel; fwd=bypass` (asked not to use the cache, or the cache
  backend is unreachable).
- Entries and counts are per tenant too, so a tenant's admin flushes and reads its own only.

Embeddings (`CACHE_KIND_EMBEDDING`) are not cached here as whole responses: the embedding
service caches them one text at a time (embeddings/text_cache.py), on the same backend and
counters, and its servicer reports `cache-status`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf import descriptor

from citadel.options.v1 import options_pb2
from citadel.server.auth.principal import ANONYMOUS
from citadel.server.cache import status
from citadel.server.cache.base import CacheBackend
from citadel.server.cache.counters import BACKEND_ERRORS, CacheCounters, CacheStats
from citadel.server.cache.single_flight import SingleFlight
from citadel.server.cache.ttl import DEFAULT_TTL_SECONDS
from citadel.server.chain import Call, Handler, Reply
from citadel.server.methods import MethodSpec, PolicyError
from citadel.server.metrics import Metrics
from citadel.server.tenancy import physical

__all__ = ["DEFAULT_TTL_SECONDS", "CacheInterceptor", "CacheStats"]


def _digest(*parts: bytes | str) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\x00")
    return h.hexdigest()


def _set_status(call: Call, outcome: str) -> None:
    call.response_metadata[status.CACHE_STATUS] = status.cache_status(outcome)


class CacheInterceptor:
    def __init__(
        self,
        backend: CacheBackend,
        metrics: Metrics,
        ttl_seconds: Mapping[int, float] = DEFAULT_TTL_SECONDS,
        model_identity: Callable[[str], str] = lambda name: name,
        store_identity: str = "",
        counters: CacheCounters | None = None,
    ) -> None:
        self.backend = backend
        # Replicas share entries only when they share the store behind them.
        self._store_identity = store_identity
        self._ttl = ttl_seconds
        self._model_identity = model_identity  # what a model name resolves to (model_field)
        # Shared with the embedding service's per-text cache: one set of counts and failures.
        self.counters = counters or CacheCounters(metrics, backend.name)
        self._flight = SingleFlight()
        self._unbumped: set[str] = set()  # scopes whose write could not invalidate them yet

    def for_method(self, spec: MethodSpec):
        """What the chain runs for `spec`'s calls, its cache option read once: nothing for
        streams, for RPCs that declare no caching and for embeddings (cached per text by the
        embedding service), else the write or read path."""
        if spec.client_streaming or spec.server_streaming:
            return None
        policy = spec.cache
        if policy.invalidates_collection:
            return self._write
        kind = policy.kind
        if kind == options_pb2.CACHE_KIND_UNSPECIFIED:
            return None
        if kind == options_pb2.CACHE_KIND_EMBEDDING:
            if policy.ttl_seconds:
                raise PolicyError(
                    f"{spec.path}: a CACHE_KIND_EMBEDDING method is cached per text for the "
                    "configured embedding TTL ([cache.ttl_seconds] embedding): leave ttl_seconds 0"
                )
            return None
        if kind not in self._ttl and not policy.ttl_seconds:  # a retired kind (CACHE_KIND_HEALTH)
            raise PolicyError(
                f"{spec.path}: cache kind {kind} has no default TTL; give its cache option a ttl_seconds"
            )
        model_field = _model_field(spec)
        ttl = policy.ttl_seconds or self._ttl[kind]

        async def read(call: Call, request: Any, proceed: Handler) -> Reply:
            if status.asks_no_cache(call.metadata):
                self.counters.bypassed(spec.path)
                _set_status(call, status.BYPASS)
                return await proceed(call, request)
            model = self._model_identity(getattr(request, model_field)) if model_field else ""
            return await self._read(call, request, proceed, ttl, model)

        return read

    async def _write(self, call: Call, request: Any, proceed: Handler) -> Reply:
        reply = await proceed(call, request)
        await self._bump(self._scope(call, request))
        return reply

    async def _bump(self, scope: str) -> None:
        """Invalidates `scope`'s cached reads; one that cannot be (the backend is down) is
        remembered and done before this replica serves any cached read again."""
        try:
            await self.backend.bump(scope)
        except BACKEND_ERRORS as e:
            self.counters.failures.report(e)
            self._unbumped.add(scope)

    async def _caught_up(self) -> bool:
        """Whether every write's invalidation has reached the backend (retrying those that had
        not): until then a cached read could be from before a write, so none is served."""
        for scope in list(self._unbumped):
            try:
                await self.backend.bump(scope)
            except BACKEND_ERRORS as e:
                self.counters.failures.report(e)
                return False
            self._unbumped.discard(scope)
        return True

    async def _read(self, call: Call, request: Any, proceed: Handler, ttl: float, model: str) -> Reply:
        spec = call.method
        tenant = self._tenant(call)
        key = _digest(spec.path, tenant, model, request.SerializeToString(deterministic=True))
        found = (
            await self.counters.guarded(self.backend.lookup(self._scope(call, request), [key], tenant=tenant))
            if not self._unbumped or await self._caught_up()
            else None
        )
        if found is None:  # backend down: serve uncached
            _set_status(call, status.UNAVAILABLE)
            return await proceed(call, request)
        entry = found[0]
        if entry.value is not None:
            self.counters.looked_up(tenant, spec.path, 1, 0)
            _set_status(call, status.HIT)
            return spec.response_type.FromString(entry.value)
        self.counters.looked_up(tenant, spec.path, 0, 1)

        async def fetch_and_store():
            # Stored before the flight ends, so no later miss can start a second flight.
            reply = await proceed(call, request)
            await self.counters.guarded(self.backend.store([(entry.key, reply.SerializeToString())], ttl))
            return reply

        reply, leader = await self._flight.run(entry.key, fetch_and_store)
        _set_status(call, status.MISS if leader else status.COLLAPSED)
        if not leader:
            self.counters.coalesced(tenant, spec.path)
        return reply

    @staticmethod
    def _tenant(call: Call) -> str:
        return call.state.get("principal", ANONYMOUS).tenant

    def _scope(self, call: Call, request: Any) -> str:
        name = call.method.collection_of(request)
        return self._collection_scope(physical(self._tenant(call), name)) if name else ""

    def _collection_scope(self, stored_name: str) -> str:
        return f"{self._store_identity}|{stored_name}"

    async def invalidate(self, stored_name: str) -> None:
        """For writes that do not pass through the chain (batch workers): bumps the collection's
        version, so cached reads of it are not served again."""
        await self._bump(self._collection_scope(stored_name))

    def stats(self, tenant: str) -> CacheStats:
        """Counts since start-up (this interceptor's and the per-text embedding cache's):
        `tenant`'s own, or every tenant's summed when `tenant` is ""."""
        return self.counters.stats(tenant)

    async def usage(self) -> tuple[int, int] | None:
        """(entries, bytes) of the whole backend, or None while it is unreachable."""
        return await self.counters.guarded(self.backend.usage())

    async def flush(self, tenant: str) -> None:
        """Drops `tenant`'s entries, or every entry when `tenant` is ""."""
        await self.backend.flush(tenant or None)


def _model_field(spec: MethodSpec) -> str:
    """The cache option's model_field, checked: a top-level string field of the request."""
    name = spec.cache.model_field
    if not name:
        return ""
    field = spec.descriptor.input_type.fields_by_name.get(name)
    if field is None or field.type != descriptor.FieldDescriptor.TYPE_STRING or field.is_repeated:
        raise PolicyError(f"{spec.path}: cache model_field {name!r} is not a string field of the request")
    return name
