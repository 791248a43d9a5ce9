"""OpenTelemetry tracing, an optional extra: `pip install 'citadel-gateway[tracing]'`.

With `[tracing] enabled = true` one trace follows a request from where it enters the gateway to
every backend it touches:

    HTTP server span      POST /graphql, POST /v1/...      (http_app.py; REST and GraphQL)
    └ call span           /citadel.vector.v1.VectorService/SearchVectors   (interceptor.py;
      │                   SERVER for gRPC, under the HTTP span for REST and GraphQL)
      ├ cache.lookup / cache.store       the response cache (Redis or in process)
      ├ ratelimit.take                   a token bucket (Redis or in process)
      ├ model.embed                      one model backend call: HTTP or the local model
      ├ store.search / store.upsert ...  the vector store (Qdrant or the embedded engine)
      └ jobs.submit / jobs.get ...       the batch job queue (Redis Streams or SQLite)

An incoming W3C `traceparent` (gRPC metadata, HTTP header) continues the caller's trace, and
HTTP model backends receive one, so a traced embedding server joins it too. Backend spans are
made only inside a traced call: health probes and idle queue polling make no traces.

Only this module is imported when tracing is off: the gateway installs no interceptor,
middleware or wrapper then, so the untraced path costs nothing. Everything that imports
OpenTelemetry lives in the other modules of this package and loads when tracing is on.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from citadel.server.redaction import redact_url

if TYPE_CHECKING:
    from citadel.server.config import Settings

EXPORTERS = ("otlp", "console", "none")
EXTRA_MODULES = ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter")
INSTALL_HINT = "pip install 'citadel-gateway[tracing]'"


def check_settings(settings: Settings) -> None:
    """The [tracing] keys are valid, and when tracing is on, the extra is installed; else a
    ValueError naming the key (Settings.validate makes it a ConfigError)."""
    if settings.tracing_exporter not in EXPORTERS:
        raise ValueError(
            f"tracing.exporter: {settings.tracing_exporter!r} is not one of {', '.join(EXPORTERS)}"
        )
    endpoint = urlsplit(settings.tracing_endpoint)
    if endpoint.scheme not in ("http", "https") or not endpoint.hostname:
        raise ValueError(
            f"tracing.endpoint: {redact_url(settings.tracing_endpoint)!r} is not an http(s) URL such as "
            "'http://127.0.0.1:4318/v1/traces'"
        )
    if not 0.0 <= settings.tracing_sample_ratio <= 1.0:
        raise ValueError(
            f"tracing.sample_ratio: must be between 0 and 1, got {settings.tracing_sample_ratio}"
        )
    if not settings.tracing_service_name.strip():
        raise ValueError("tracing.service_name: must not be empty")
    if settings.tracing_enabled:
        missing = [name for name in EXTRA_MODULES if not _importable(name)]
        if missing:
            raise ValueError(
                f"tracing.enabled: OpenTelemetry is not installed ({missing[0]} is missing); "
                f"install the tracing extra: {INSTALL_HINT}"
            )


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # a parent package is missing or broken
        return False
