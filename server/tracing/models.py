"""Spans for embedding model backends: `model.embed`, one per call to one backend.

Every backend's provider is wrapped, so the span covers exactly the work on that backend: an
HTTP request to an Ollama / OpenAI-compatible / TEI server (kind CLIENT, with its address), or
the in-process local model's inference (kind INTERNAL). HTTP providers also send the W3C
`traceparent` of that span, so a backend that traces itself continues the same trace.
Health probes run outside any call and make no span.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

if TYPE_CHECKING:
    import numpy as np

    from citadel.server.models.backend import Backend
    from citadel.server.models.router import ModelRouter


class TracedProvider:
    def __init__(self, provider: Any, backend: Backend, tracer: trace.Tracer) -> None:
        self.traced = provider
        self._tracer = tracer
        spec = backend.spec
        remote = bool(spec.url)
        self._kind = SpanKind.CLIENT if remote else SpanKind.INTERNAL
        self._attributes: dict[str, Any] = {
            "citadel.model": backend.model,
            "citadel.model.backend": spec.id,
            "citadel.model.provider": spec.provider,
            "citadel.model.backend_model": spec.model,
        }
        if remote:
            url = urlsplit(spec.url)
            self._attributes["server.address"] = url.hostname or ""
            if url.port:
                self._attributes["server.port"] = url.port
            self._attributes["url.full"] = spec.shown_url.rstrip("/") + getattr(provider, "path", "")
            _propagate_over(getattr(provider, "_client", None))

    async def embed(self, texts: list[str], timeout: float) -> np.ndarray:
        if not trace.get_current_span().is_recording():
            return await self.traced.embed(texts, timeout)
        with self._tracer.start_as_current_span(
            "model.embed", kind=self._kind, attributes={**self._attributes, "citadel.model.texts": len(texts)}
        ) as span:
            vectors = await self.traced.embed(texts, timeout)
            if getattr(vectors, "ndim", 0) == 2:
                span.set_attribute("citadel.model.dimensions", int(vectors.shape[1]))
            return vectors

    async def close(self) -> None:
        await self.traced.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.traced, name)


def _propagate_over(client: Any) -> None:
    """Adds `traceparent` (from the current span) to every request the httpx client sends."""
    if not isinstance(client, httpx.AsyncClient):
        return

    async def inject(request: httpx.Request) -> None:
        propagate.inject(request.headers)

    hooks = client.event_hooks
    hooks["request"] = [*hooks.get("request", []), inject]
    client.event_hooks = hooks


def trace_models(router: ModelRouter, tracer: trace.Tracer) -> None:
    """Wraps the provider of every backend of every model the router serves."""
    for pool in router.pools.values():
        for backend in pool.backends:
            if not isinstance(backend.provider, TracedProvider):
                backend.provider = TracedProvider(backend.provider, backend, tracer)
