"""Response cache for the RPCs whose cache option opts in.

- Key: method, tenant and the request's deterministic serialization, under the scope of the
  collection the request names; writes bump that collection's version (their option says
  `invalidates_collection`), so a read after a write never sees the old answer.
- Embeddings are cached per input text, so a batch with some known texts sends only the
  unknown ones to the model.
- Concurrent identical misses are coalesced (single flight).
- `cache-control: no-cache` bypasses it. A failing backend is counted and logged, never fatal.
- Every cacheable call answers a `cache-status` (RFC 9211) in its response metadata (an HTTP
  header on REST): `citadel; hit`, `citadel; fwd=miss` (`; collapsed` when it waited on an
  identical call's fetch), `citadel; fwd=partial` (some of its texts were cached) or
  `citadel; fwd=bypass` (asked not to use the cache, or the cache backend is unreachable).
- Entries and counts are per tenant too, so a tenant's admin flushes and reads its own only.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from citadel.options.v1 import options_pb2
from citadel.server.auth.principal import ANONYMOUS
from citadel.server.cache.base import CacheBackend
from citadel.server.cache.single_flight import SingleFlight
from citadel.server.cache.ttl import DEFAULT_TTL_SECONDS
from citadel.server.chain import Call, Handler, Reply
from citadel.server.degraded import FailureReporter
from citadel.server.methods import MethodSpec
from citadel.server.metrics import Metrics
from citadel.server.servicers.validation import TextLimits
from citadel.server.tenancy import physical

_BACKEND_ERRORS = (RedisError, OSError)
CACHE_STATUS = "cache-status"


@dataclass(frozen=True)
class MethodCacheStats:
    path: str  # the method's full path, "/package.Service/Method"
    hits: int
    misses: int
    coalesced: int  # misses that waited on an identical call's fetch


@dataclass(frozen=True)
class CacheStats:
    backend: str
    backend_errors: int
    methods: list[MethodCacheStats]


def _cache_status(call: Call, outcome: str) -> None:
    call.response_metadata[CACHE_STATUS] = f"citadel; {outcome}"


def _digest(*parts: bytes | str) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\x00")
    return h.hexdigest()


class CacheInterceptor:
    def __init__(
        self,
        backend: CacheBackend,
        metrics: Metrics,
        ttl_seconds: Mapping[int, float] = DEFAULT_TTL_SECONDS,
        model_identity: Callable[[str], str] = lambda name: name,
        store_identity: str = "",
        queues_as_job: Callable[[str, int, bool], bool] = lambda model, count, urgent: False,
        text_limits: TextLimits | None = None,
    ) -> None:
        self.backend = backend
        # Replicas share entries only when they share the store behind them.
        self._store_identity = store_identity
        self._metrics = metrics
        self._ttl = ttl_seconds
        self._model_identity = model_identity  # the embedding model a name resolves to
        # (model, texts, urgent) -> answered with a batch job id instead of embeddings: not cached
        self._queues_as_job = queues_as_job
        # limits.embed_*: a request beyond them goes to the servicer, which refuses it, even
        # when its texts are cached (each was cached by a call within the limits)
        self._text_limits = text_limits
        self._flight = SingleFlight()
        self._unbumped: set[str] = set()  # scopes whose write could not invalidate them yet
        self.failures = FailureReporter(f"cache backend ({backend.name})", metrics.cache_errors)
        # (tenant, method path) -> [hits, misses, coalesced]
        self._counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])

    def for_method(self, spec: MethodSpec):
        """What the chain runs for `spec`'s calls, its cache option read once: nothing for
        streams and for RPCs that declare no caching, else the write or read path."""
        return self._step(spec)

    def _step(self, spec: MethodSpec):
        if spec.client_streaming or spec.server_streaming:
            return None
        if spec.cache.invalidates_collection:
            return self._write
        kind = spec.cache.kind
        if kind == options_pb2.CACHE_KIND_UNSPECIFIED:
            return None
        if kind not in self._ttl and not spec.cache.ttl_seconds:  # a retired kind (CACHE_KIND_HEALTH)
            raise ValueError(
                f"{spec.path}: cache kind {kind} has no default TTL; give its cache option a ttl_seconds"
            )
        bypass = self._metrics.child(self._metrics.cache, spec.path, "bypass")

        async def read(call: Call, request: Any, proceed: Handler) -> Reply:
            if "no-cache" in call.metadata.get("cache-control", ""):
                bypass.inc()
                _cache_status(call, "fwd=bypass")
                return await proceed(call, request)
            return await self._read(call, request, proceed, kind)

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
        except _BACKEND_ERRORS as e:
            self.failures.report(e)
            self._unbumped.add(scope)

    async def _caught_up(self) -> bool:
        """Whether every write's invalidation has reached the backend (retrying those that had
        not): until then a cached read could be from before a write, so none is served."""
        for scope in list(self._unbumped):
            try:
                await self.backend.bump(scope)
            except _BACKEND_ERRORS as e:
                self.failures.report(e)
                return False
            self._unbumped.discard(scope)
        return True

    async def _read(self, call: Call, request: Any, proceed: Handler, kind: int) -> Reply:
        spec = call.method
        ttl = spec.cache.ttl_seconds or self._ttl[kind]
        if kind == options_pb2.CACHE_KIND_EMBEDDING:
            return await self._per_text(call, request, proceed, ttl)
        # A search by query_text depends on what its model resolves to, not just its name.
        model = self._model_identity(request.model) if getattr(request, "query_text", "") else ""
        key = _digest(spec.path, self._tenant(call), model, request.SerializeToString(deterministic=True))
        found = (
            await self._guarded(
                self.backend.lookup(self._scope(call, request), [key], tenant=self._tenant(call))
            )
            if not self._unbumped or await self._caught_up()
            else None
        )
        if found is None:  # backend down: serve uncached
            _cache_status(call, 'fwd=bypass; detail="cache unavailable"')
            return await proceed(call, request)
        entry = found[0]
        if entry.value is not None:
            self._record(call, 1, 0)
            _cache_status(call, "hit")
            return spec.response_type.FromString(entry.value)
        self._record(call, 0, 1)

        async def fetch_and_store():
            # Stored before the flight ends, so no later miss can start a second flight.
            reply = await proceed(call, request)
            await self._guarded(self.backend.store([(entry.key, reply.SerializeToString())], ttl))
            return reply

        reply, leader = await self._flight.run(entry.key, fetch_and_store)
        _cache_status(call, "fwd=miss" if leader else "fwd=miss; collapsed")
        if not leader:
            self._counts[self._tenant(call), spec.path][2] += 1
        return reply

    async def _per_text(self, call: Call, request: Any, proceed: Handler, ttl: float) -> Reply:
        """GenerateEmbedding-shaped requests (`text` or `texts`, `model`, `normalize`)."""
        spec = call.method
        single = bool(request.text)
        texts = [request.text] if single else list(request.texts)
        if not texts or (request.text and request.texts):
            return await proceed(call, request)  # invalid: the servicer says why
        if self._text_limits is not None and not self._text_limits.admit(texts):
            return await proceed(call, request)  # beyond limits.embed_*: the servicer says so
        if self._queues_as_job(request.model, len(texts), request.urgent):
            return await proceed(call, request)
        identity = self._model_identity(request.model)
        keys = [_digest(spec.path, self._tenant(call), identity, str(request.normalize), t) for t in texts]
        found = await self._guarded(self.backend.lookup("", keys, tenant=self._tenant(call)))
        if found is None:
            _cache_status(call, 'fwd=bypass; detail="cache unavailable"')
            return await proceed(call, request)
        started = time.perf_counter()
        vectors: dict[str, Any] = {}  # text -> cached single-text response
        store_keys: dict[str, str] = {}
        for text, entry in zip(texts, found, strict=True):
            if entry.value is not None:
                vectors[text] = spec.response_type.FromString(entry.value)
            else:
                store_keys.setdefault(text, entry.key)
        hits = sum(1 for e in found if e.value is not None)
        self._record(call, hits, len(found) - hits)
        missing = list(store_keys)
        _cache_status(call, "hit" if not missing else "fwd=partial" if vectors else "fwd=miss")
        model = next(iter(vectors.values())).model if vectors else request.model
        if missing:
            sub = spec.request_type()
            sub.CopyFrom(request)
            sub.ClearField("text")
            del sub.texts[:]
            sub.texts.extend(missing)
            flight_key = _digest(*(store_keys[t] for t in missing))

            async def embed_and_store():
                reply = await proceed(call, sub)
                singles = []
                for embedding in reply.embeddings:
                    one = spec.response_type(model=reply.model, dimensions=reply.dimensions)
                    one.embedding.extend(embedding.values)
                    singles.append(one)
                fresh = [
                    (store_keys[t], one.SerializeToString()) for t, one in zip(missing, singles, strict=True)
                ]
                await self._guarded(self.backend.store(fresh, ttl))
                return singles

            singles, leader = await self._flight.run(flight_key, embed_and_store)
            if not leader:
                self._counts[self._tenant(call), spec.path][2] += 1
            vectors.update(zip(missing, singles, strict=True))
            model = singles[0].model
        response = spec.response_type(model=model, processing_time_ms=(time.perf_counter() - started) * 1000)
        for t in texts:
            response.embeddings.add().values.extend(vectors[t].embedding)
        if single:  # the deprecated single-text field, for older clients
            response.embedding.extend(response.embeddings[0].values)
        response.dimensions = len(vectors[texts[0]].embedding)
        return response

    def _record(self, call: Call, hits: int, misses: int) -> None:
        method = call.method.path
        if hits:
            self._metrics.child(self._metrics.cache, method, "hit").inc(hits)
        if misses:
            self._metrics.child(self._metrics.cache, method, "miss").inc(misses)
        c = self._counts[self._tenant(call), method]
        c[0] += hits
        c[1] += misses

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

    async def _guarded(self, operation):
        try:
            return await operation
        except _BACKEND_ERRORS as e:
            self.failures.report(e)
            return None

    def stats(self, tenant: str) -> CacheStats:
        """Counts since start-up: `tenant`'s own, or every tenant's summed when `tenant` is ""."""
        by_method: dict[str, list[int]] = {}
        for (owner, path), counts in self._counts.items():
            if tenant and owner != tenant:
                continue
            total = by_method.setdefault(path, [0, 0, 0])
            for i, n in enumerate(counts):
                total[i] += n
        return CacheStats(
            backend=self.backend.name,
            backend_errors=self.failures.total,
            methods=[MethodCacheStats(path, *counts) for path, counts in sorted(by_method.items())],
        )

    async def usage(self) -> tuple[int, int] | None:
        """(entries, bytes) of the whole backend, or None while it is unreachable."""
        return await self._guarded(self.backend.usage())

    async def flush(self, tenant: str) -> None:
        """Drops `tenant`'s entries, or every entry when `tenant` is ""."""
        await self.backend.flush(tenant or None)
