"""The gateway's tracer: a TracerProvider built from the [tracing] settings, and the one place
that installs every traced wrapper (interceptor, HTTP middleware, backend proxies).

The provider is the gateway's own, not OpenTelemetry's global one, so several gateways in one
process (tests) each export their own spans, and shutdown flushes exactly ours.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from citadel.server.redaction import redact_url
from citadel.server.tracing.http_app import TracingApp
from citadel.server.tracing.interceptor import TracingInterceptor
from citadel.server.tracing.models import trace_models
from citadel.server.tracing.proxies import (
    CACHE_METHODS,
    QUEUE_METHODS,
    RATE_LIMIT_METHODS,
    STORE_METHODS,
    Traced,
    redis_attributes,
)

if TYPE_CHECKING:
    import redis.asyncio as aioredis

    from citadel.server.config import Settings
    from citadel.server.models.router import ModelRouter

log = logging.getLogger("citadel.tracing")

SCOPE = "citadel.gateway"
# At shutdown: time for buffered spans to go out, then for the exporter to stop. A collector
# that does not answer costs shutdown this much at most, not the exporter's retry schedule.
FLUSH_SECONDS = 3.0
STOP_SECONDS = 2.0


def _exporter(settings: Settings) -> SpanExporter | None:
    if settings.tracing_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=settings.tracing_endpoint)
    if settings.tracing_exporter == "console":
        return ConsoleSpanExporter(service_name=settings.tracing_service_name)
    return None  # "none": spans are made and propagated, not exported


def _redis_if_used(backend: Any, redis: aioredis.Redis | None) -> dict[str, Any]:
    """Redis's attributes for a backend that talks to it; none for an in-process one."""
    from citadel.server.cache.redis_cache import RedisCache
    from citadel.server.jobs.queue_redis import RedisQueue
    from citadel.server.ratelimit.redis_buckets import RedisBuckets

    return redis_attributes(redis) if isinstance(backend, (RedisCache, RedisBuckets, RedisQueue)) else {}


class Tracing:
    def __init__(self, settings: Settings) -> None:
        from citadel.server.servicers.status import gateway_version

        resource = Resource.create(
            {
                "service.name": settings.tracing_service_name,
                "service.version": gateway_version(),
                "service.instance.id": f"{socket.gethostname()}:{os.getpid()}",
            }
        )
        self.provider = TracerProvider(
            resource=resource,
            sampler=ParentBased(TraceIdRatioBased(settings.tracing_sample_ratio)),
            shutdown_on_exit=False,  # close() does it, bounded; an exit hook could block exit
        )
        self._exporter = exporter = _exporter(settings)
        if exporter is not None:
            self.provider.add_span_processor(BatchSpanProcessor(exporter))
        self.tracer: trace.Tracer = self.provider.get_tracer(SCOPE)
        self._qdrant_url = settings.qdrant_url
        where = redact_url(settings.tracing_endpoint) if settings.tracing_exporter == "otlp" else "stdout"
        log.info(
            "tracing on: exporter %s%s, sample ratio %g",
            settings.tracing_exporter,
            f" to {where}" if exporter is not None else "",
            settings.tracing_sample_ratio,
        )

    # -- what the gateway wraps -----------------------------------------------------------

    def interceptor(self) -> TracingInterceptor:
        return TracingInterceptor(self.tracer)

    def http_app(self, app: Any) -> TracingApp:
        return TracingApp(app, self.tracer)

    def store(self, store: Any) -> Any:
        attributes: dict[str, Any] = {"db.system.name": "qdrant"}
        if self._qdrant_url:
            url = urlsplit(self._qdrant_url)
            attributes["server.address"] = url.hostname or ""
            attributes["server.port"] = url.port or 6333
        elif type(store).__name__ == "EdgeStore":
            attributes["db.system.name"] = "qdrant-edge"  # Qdrant's engine in this process
        remote = bool(self._qdrant_url)
        return Traced(store, self.tracer, "store", STORE_METHODS, attributes, remote)

    def cache(self, backend: Any, redis: aioredis.Redis | None) -> Any:
        attributes = {"citadel.cache.backend": backend.name, **_redis_if_used(backend, redis)}
        return Traced(
            backend, self.tracer, "cache", CACHE_METHODS, attributes, "server.address" in attributes
        )

    def buckets(self, buckets: Any, redis: aioredis.Redis | None) -> Any:
        attributes = _redis_if_used(buckets, redis)
        return Traced(buckets, self.tracer, "ratelimit", RATE_LIMIT_METHODS, attributes, bool(attributes))

    def queue(self, queue: Any, redis: aioredis.Redis | None) -> Any:
        attributes = _redis_if_used(queue, redis)
        return Traced(queue, self.tracer, "jobs", QUEUE_METHODS, attributes, bool(attributes))

    def models(self, router: ModelRouter) -> None:
        trace_models(router, self.tracer)

    async def close(self) -> None:
        """Exports the buffered spans and stops, within FLUSH_SECONDS + STOP_SECONDS."""
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()

        def run() -> None:
            try:
                self._shutdown()
            finally:
                try:
                    loop.call_soon_threadsafe(lambda: finished.done() or finished.set_result(None))
                except RuntimeError:  # the loop is gone: nobody waits any more
                    pass

        # A daemon thread, not the loop's executor: one stuck on a dead collector must not
        # hold up the process's exit.
        threading.Thread(target=run, name="citadel-tracing-shutdown", daemon=True).start()
        try:
            await asyncio.wait_for(asyncio.shield(finished), FLUSH_SECONDS + STOP_SECONDS)
        except TimeoutError:
            log.warning(
                "tracing: exporter still busy after %g s; its last spans are dropped",
                FLUSH_SECONDS + STOP_SECONDS,
            )

    def _shutdown(self) -> None:
        # The batch processor exports everything still queued as it shuts down, and neither it
        # nor its force_flush has a working time limit: past FLUSH_SECONDS, stopping the exporter
        # ends its retries, and what is left is dropped at once.
        timer = None
        if self._exporter is not None:
            timer = threading.Timer(FLUSH_SECONDS, self._give_up, args=(self._exporter,))
            timer.daemon = True
            timer.start()
        try:
            self.provider.shutdown()
        finally:
            if timer is not None:
                timer.cancel()

    @staticmethod
    def _give_up(exporter: SpanExporter) -> None:
        log.warning("tracing: spans not exported within %g s; dropping the rest", FLUSH_SECONDS)
        exporter.shutdown()
