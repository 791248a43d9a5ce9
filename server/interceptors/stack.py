"""The interceptor stack, in order, built from settings:
[tracing →] errors/deadline → telemetry → auth → rate limit → cache → servicer;
and, on the same cache backend and counters, the embedding service's per-text cache."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from citadel.options.v1 import options_pb2
from citadel.server.auth.api_keys import ApiKeyVerifier
from citadel.server.auth.jwt_tokens import JwtVerifier
from citadel.server.cache.base import CacheBackend
from citadel.server.cache.counters import CacheCounters
from citadel.server.cache.memory import MemoryCache
from citadel.server.cache.redis_cache import RedisCache
from citadel.server.chain import Interceptor
from citadel.server.config import ConfigError, Settings
from citadel.server.embeddings.text_cache import TextCache
from citadel.server.interceptors.auth import AuthInterceptor
from citadel.server.interceptors.cache import CacheInterceptor
from citadel.server.interceptors.errors import ErrorsInterceptor
from citadel.server.interceptors.rate_limit import RateLimitInterceptor
from citadel.server.interceptors.telemetry import TelemetryInterceptor
from citadel.server.metrics import Metrics
from citadel.server.ratelimit.buckets import BucketStore, InProcessBuckets
from citadel.server.ratelimit.redis_buckets import RedisBuckets
from citadel.server.redaction import redact_url

if TYPE_CHECKING:
    from citadel.server.tracing.provider import Tracing

log = logging.getLogger("citadel")


@dataclass
class Stack:
    interceptors: list[Interceptor]
    cache: CacheInterceptor | None
    text_cache: TextCache | None  # for the embedding service; None when caching is off


def build_stack(
    settings: Settings,
    metrics: Metrics,
    redis: aioredis.Redis | None,
    model_identity: Callable[[str], str] | None = None,
    tracing: Tracing | None = None,
    cache_backend: CacheBackend | None = None,
    buckets: BucketStore | None = None,
) -> Stack:
    """`cache_backend` and `buckets`, when given, are shared ones (the supervisor's, under
    --workers); otherwise Redis's when configured, else this process's own.
    `model_identity` is what a model name resolves to (cache option model_field)."""
    parsed = settings.parsed  # the sections as Settings.load parsed them
    try:
        auth = _auth(settings, metrics)
    except (ValueError, OSError) as e:
        raise ConfigError(str(e)) from None
    if buckets is None:
        buckets = RedisBuckets(redis) if redis is not None else InProcessBuckets()
    if tracing is not None:
        buckets = tracing.buckets(buckets, redis)
    cache = text_cache = None
    if settings.cache_enabled:
        backend = cache_backend or (
            RedisCache(redis)
            if redis is not None
            else MemoryCache(settings.cache_max_entries, settings.cache_max_bytes)
        )
        if tracing is not None:
            backend = tracing.cache(backend, redis)
        counters = CacheCounters(metrics, backend.name)
        cache = CacheInterceptor(
            backend,
            metrics,
            parsed.cache_ttls,
            store_identity=store_identity(settings),
            counters=counters,
            **({"model_identity": model_identity} if model_identity else {}),
        )
        text_cache = TextCache(backend, counters, parsed.cache_ttls[options_pb2.CACHE_KIND_EMBEDDING])
    interceptors: list[Interceptor] = [
        ErrorsInterceptor(),
        TelemetryInterceptor(metrics, settings.access_log),
        auth,
        RateLimitInterceptor(parsed.rate_limits, buckets, metrics),
    ]
    if cache is not None:
        interceptors.append(cache)
    if tracing is not None:
        interceptors.insert(0, tracing.interceptor())  # first: its span covers the whole call
    return Stack(interceptors, cache, text_cache)


def _auth(settings: Settings, metrics: Metrics) -> AuthInterceptor:
    if not settings.auth_enabled:
        log.warning(
            "authentication is OFF (--insecure-no-auth / auth.enabled = false): every caller is admin"
        )
        return AuthInterceptor.disabled(metrics)
    if problem := settings.missing_credentials():
        raise ValueError(problem)
    keys = settings.parsed.api_keys
    jwt = JwtVerifier.from_settings(settings)
    return AuthInterceptor(ApiKeyVerifier(keys) if keys else None, jwt, metrics)


def store_identity(settings: Settings) -> str:
    """What makes two replicas' stores the same store: the Qdrant URL (without credentials: it
    becomes part of cache keys), or this machine's data dir."""
    if settings.qdrant_url:
        return redact_url(settings.qdrant_url)
    return f"{socket.gethostname()}:{settings.data_dir.resolve()}"
