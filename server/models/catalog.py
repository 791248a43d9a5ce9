"""The model catalog: which models exist, how each may be called, and the backends serving it.

Parsed from the `[models]` settings with every mistake named by its key
(`models.catalog.phi3.backends[1].url: ...`). The nine built-in models are served by the
in-process local model, so `make run` works offline; each `[models.catalog.NAME]` table adds the
model NAME or replaces that one built-in model, and `models.builtin = false` leaves the nine out.

`openchat` was asked for both as real-time and as hybrid. Citadel makes it **hybrid**: a hybrid
model answers single texts and requests within the real-time budget synchronously, exactly as a
real-time model does, so both readings hold; only large, non-urgent requests become batch jobs.

Backend credentials need not sit in URLs: `api_key_env` / `api_key_file` send a bearer token,
`headers` any header, each value given as is or read from `{env = "VAR"}` / `{file = "/path"}`.
Secrets are read when a provider is made, never kept in the catalog, and every URL shown or
logged goes through server/redaction.py (a `user:pass@` URL still works, but shows as `***@`).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from citadel.server.redaction import redact_url

REALTIME = "realtime"
HYBRID = "hybrid"
BULK_ONLY = "bulk_only"
PATTERNS = (REALTIME, HYBRID, BULK_ONLY)
STRATEGIES = ("p2c", "round_robin", "least_connections", "weighted")
PROVIDERS = ("ollama", "openai", "tei", "local")

# The seed's nine models and their integration patterns (openchat: see the module docstring).
SEED_MODELS: dict[str, str] = {
    "phi3": REALTIME,
    "general": REALTIME,
    "openchat": HYBRID,
    "hermes": HYBRID,
    "mixtral": BULK_ONLY,
    "yi34": BULK_ONLY,
    "deepcoder": BULK_ONLY,
    "imp": BULK_ONLY,
    "deepseek": BULK_ONLY,
}
DEFAULT_MODEL = "general"
LOCAL_MODEL_NAME = "all-MiniLM-L6-v2"
LOCAL_DIMENSIONS = 384

# Per provider: (texts per request, requests in flight) when the backend does not say.
PROVIDER_DEFAULTS = {"ollama": (32, 8), "openai": (64, 8), "tei": (32, 8), "local": (32, 4)}


@dataclass(frozen=True)
class BackendSpec:
    id: str
    provider: str
    url: str  # empty for the local provider
    model: str  # the name the backend knows the model by
    weight: int = 1
    max_concurrency: int = 8
    max_queue: int = 32  # requests waiting for a slot; more → RESOURCE_EXHAUSTED
    max_batch: int = 32  # texts per request to this backend
    timeout_seconds: float = 30.0
    api_key_env: str = ""  # environment variable holding a bearer token (http providers)
    api_key_file: str = ""  # file holding a bearer token (http providers)
    # Extra request headers: (name, source, value), source "value", "env" (a variable's name)
    # or "file" (a path): the secret itself is read by the provider, not kept here.
    headers: tuple[tuple[str, str, str], ...] = ()

    @property
    def shown_url(self) -> str:
        """The URL as replies, errors and logs may show it: without credentials."""
        return redact_url(self.url)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    pattern: str
    strategy: str
    backends: tuple[BackendSpec, ...]
    dimensions: int = 0  # 0: learned from the backends' probe answers
    realtime_budget: int = 32  # hybrid: most texts answered synchronously without `urgent`


@dataclass(frozen=True)
class Resilience:
    """Breakers, outlier detection, retries and priorities; `[models.resilience]` keys."""

    breaker_failures: int = 5  # consecutive failures that open a backend's circuit
    breaker_open_seconds: float = 5.0  # then one probe request is let through
    eject_failures: int = 5  # consecutive failures that eject a backend (outlier detection)
    eject_base_seconds: float = 5.0  # ejection lasts base × times ejected ...
    eject_max_seconds: float = 120.0  # ... up to this
    max_ejected_percent: int = 50  # never eject more than this share of a model's backends
    retry_ratio: float = 0.2  # retries allowed per request, over a 10 s window ...
    retry_min_per_second: float = 5.0  # ... plus this many per second whatever the traffic
    bulk_share: float = 0.5  # most of a backend's concurrency bulk (batch) work may take
    replica_min_cosine: float = 0.98  # probe vectors of replicas must agree at least this well
    latency_ewma_alpha: float = 0.3


@dataclass(frozen=True)
class Catalog:
    default: str
    models: dict[str, ModelSpec]
    health_interval_seconds: float = 1.0  # healthy backends; unhealthy ones every second
    request_timeout_seconds: float = 30.0
    resilience: Resilience = field(default_factory=Resilience)


def local_catalog(realtime_budget: int = 32) -> dict[str, ModelSpec]:
    """The nine seed models, each on the in-process local model."""
    batch, concurrency = PROVIDER_DEFAULTS["local"]
    backend = BackendSpec(
        id="local",
        provider="local",
        url="",
        model=LOCAL_MODEL_NAME,
        max_batch=batch,
        max_concurrency=concurrency,
        max_queue=64,
    )
    return {
        name: ModelSpec(
            name=name,
            pattern=pattern,
            strategy="p2c",
            backends=(backend,),
            dimensions=LOCAL_DIMENSIONS,
            realtime_budget=realtime_budget,
        )
        for name, pattern in SEED_MODELS.items()
    }


def parse_catalog(
    default: str,
    catalog: dict,
    realtime_budget: int = 32,
    health_interval_seconds: float = 1.0,
    request_timeout_seconds: float = 30.0,
    resilience: dict | None = None,
    builtin: bool = True,
) -> Catalog:
    """The catalog from the `[models]` settings; ValueError naming the key on any mistake."""
    _positive("models.realtime_budget", realtime_budget, integer=True)
    _positive("models.health_interval_seconds", health_interval_seconds)
    _positive("models.request_timeout_seconds", request_timeout_seconds)
    if not isinstance(catalog, dict):
        raise ValueError("models.catalog: expected a table of models")
    models = local_catalog(realtime_budget) if builtin else {}
    models.update({name: _model(name, raw, realtime_budget) for name, raw in catalog.items()})
    if not models:
        raise ValueError("models.catalog: no models: configure one, or leave models.builtin = true")
    if default not in models:
        raise ValueError(
            f"models.default: {default!r} is not in models.catalog ({', '.join(sorted(models))})"
        )
    return Catalog(
        default=default,
        models=models,
        health_interval_seconds=float(health_interval_seconds),
        request_timeout_seconds=float(request_timeout_seconds),
        resilience=_resilience(resilience or {}),
    )


def _model(name: str, raw: Any, realtime_budget: int) -> ModelSpec:
    where = f"models.catalog.{name}"
    if not name or not all(c.isalnum() or c in "-_.:" for c in name):
        raise ValueError(f"{where}: model names are letters, digits and - _ . : only")
    table = _table(where, raw, {"pattern", "strategy", "dimensions", "realtime_budget", "backends"})
    pattern = table.get("pattern", SEED_MODELS.get(name, REALTIME))
    if pattern not in PATTERNS:
        raise ValueError(f"{where}.pattern: {pattern!r} is not one of {', '.join(PATTERNS)}")
    strategy = table.get("strategy", "p2c")
    if strategy not in STRATEGIES:
        raise ValueError(f"{where}.strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}")
    dimensions = table.get("dimensions", 0)
    if dimensions:
        _positive(f"{where}.dimensions", dimensions, integer=True)
    budget = table.get("realtime_budget", realtime_budget)
    _positive(f"{where}.realtime_budget", budget, integer=True)
    raw_backends = table.get("backends")
    if not isinstance(raw_backends, list) or not raw_backends:
        raise ValueError(f"{where}.backends: list at least one backend")
    backends = tuple(_backend(f"{where}.backends[{i}]", name, i, b) for i, b in enumerate(raw_backends))
    seen: dict[str, int] = {}
    for i, b in enumerate(backends):
        if b.id in seen:
            raise ValueError(f"{where}.backends[{i}].id: {b.id!r} repeats backends[{seen[b.id]}].id")
        seen[b.id] = i
    if dimensions == 0 and all(b.provider == "local" for b in backends):
        dimensions = LOCAL_DIMENSIONS
    return ModelSpec(name, pattern, strategy, backends, int(dimensions), int(budget))


_BACKEND_KEYS = {f.name for f in fields(BackendSpec)}


def _backend(where: str, model: str, index: int, raw: Any) -> BackendSpec:
    table = _table(where, raw, _BACKEND_KEYS)
    provider = table.get("provider")
    if provider not in PROVIDERS:
        raise ValueError(f"{where}.provider: {provider!r} is not one of {', '.join(PROVIDERS)}")
    batch, concurrency = PROVIDER_DEFAULTS[provider]
    url = table.get("url", "")
    if provider == "local":
        if url:
            raise ValueError(f"{where}.url: the local provider runs in process and takes no url")
    else:
        if not isinstance(url, str):
            raise ValueError(f"{where}.url: expected a string")
        try:
            parts = urlsplit(url)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"{where}.url: {redact_url(url)!r} is not an http(s) URL with a host")
        url = url.rstrip("/")
    backend_id = table.get("id", provider if provider == "local" else f"{model}-{index}")
    if not isinstance(backend_id, str) or not backend_id:
        raise ValueError(f"{where}.id: expected a non-empty string")
    remote = table.get("model", LOCAL_MODEL_NAME if provider == "local" else model)
    if not isinstance(remote, str) or not remote:
        raise ValueError(f"{where}.model: expected a non-empty string")
    api_key_env = _secret_source(f"{where}.api_key_env", "env", table.get("api_key_env", ""), provider)
    api_key_file = _secret_source(f"{where}.api_key_file", "file", table.get("api_key_file", ""), provider)
    if api_key_env and api_key_file:
        raise ValueError(f"{where}.api_key_file: give api_key_env or api_key_file, not both")
    headers = _headers(f"{where}.headers", table.get("headers", {}), provider)
    max_concurrency = table.get("max_concurrency", concurrency)
    _positive(f"{where}.max_concurrency", max_concurrency, integer=True)
    values = {
        "weight": table.get("weight", 1),
        "max_concurrency": max_concurrency,
        "max_batch": table.get("max_batch", batch),
    }
    for key, value in values.items():
        _positive(f"{where}.{key}", value, integer=True)
    max_queue = table.get("max_queue", 4 * max_concurrency)
    if not isinstance(max_queue, int) or isinstance(max_queue, bool) or max_queue < 0:
        raise ValueError(f"{where}.max_queue: expected an integer ≥ 0, got {max_queue!r}")
    timeout = table.get("timeout_seconds", 30.0)
    _positive(f"{where}.timeout_seconds", timeout)
    return BackendSpec(
        id=backend_id,
        provider=provider,
        url=url,
        model=remote,
        max_queue=max_queue,
        timeout_seconds=float(timeout),
        api_key_env=api_key_env,
        api_key_file=api_key_file,
        headers=headers,
        **{k: int(v) for k, v in values.items()},
    )


_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")


def _secret_source(key: str, source: str, value: Any, provider: str) -> str:
    """An environment variable's name or a file's path that must give a secret now, so a
    missing one stops start-up naming `key` (the secret itself is not returned)."""
    if value == "":
        return ""
    if provider == "local":
        raise ValueError(f"{key}: the local provider runs in process and takes no credentials")
    if not isinstance(value, str):
        raise ValueError(f"{key}: expected a string, got {type(value).__name__}")
    if source == "env":
        if not os.environ.get(value):
            raise ValueError(f"{key}: environment variable {value} is not set")
    else:
        try:
            secret = Path(value).read_text().strip()
        except OSError as e:
            raise ValueError(f"{key}: cannot read {value!r}: {e.strerror}") from None
        if not secret:
            raise ValueError(f"{key}: {value!r} is empty")
    return value


def _headers(key: str, raw: Any, provider: str) -> tuple[tuple[str, str, str], ...]:
    """`headers = {name = "value" | {env = "VAR"} | {file = "/path"}}`."""
    if not isinstance(raw, dict):
        raise ValueError(f"{key}: expected a table of header names")
    out = []
    for name, value in raw.items():
        where = f"{key}.{name}"
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{where}: not a header name")
        if isinstance(value, str):
            if provider == "local":
                raise ValueError(f"{where}: the local provider runs in process and takes no headers")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"{where}: a header value cannot hold CR, LF or NUL")
            out.append((name, "value", value))
            continue
        if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in ("env", "file"):
            raise ValueError(f"{where}: expected a string, {{env = \"VAR\"}} or {{file = \"/path\"}}")
        source, ref = next(iter(value.items()))
        out.append((name, source, _secret_source(f"{where}.{source}", source, ref, provider)))
    return tuple(out)


def _resilience(raw: Any) -> Resilience:
    where = "models.resilience"
    defaults = Resilience()
    table = _table(where, raw, {f.name for f in fields(Resilience)})
    values = {}
    for f in fields(Resilience):
        value = table.get(f.name, getattr(defaults, f.name))
        integer = isinstance(getattr(defaults, f.name), int)
        _positive(f"{where}.{f.name}", value, integer=integer)
        values[f.name] = value
    for name in ("bulk_share", "replica_min_cosine", "latency_ewma_alpha"):
        if values[name] > 1:
            raise ValueError(f"{where}.{name}: must be at most 1, got {values[name]}")
    if values["max_ejected_percent"] > 100:
        raise ValueError(f"{where}.max_ejected_percent: must be at most 100")
    return Resilience(**values)


def _table(where: str, raw: Any, known: set[str]) -> dict:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a table, got {raw!r}")
    for key in raw:
        if key not in known:
            raise ValueError(f"{where}.{key}: unknown setting (known: {', '.join(sorted(known))})")
    return raw


def _positive(key: str, value: Any, integer: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or value <= 0:
        noun = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{key}: expected {noun}, got {value!r}")


def catalog_from_settings(settings) -> Catalog:
    """The catalog of a `Settings` (its `models_*` fields)."""
    return parse_catalog(
        settings.models_default,
        settings.models_catalog,
        settings.models_realtime_budget,
        settings.models_health_interval_seconds,
        settings.models_request_timeout_seconds,
        settings.models_resilience,
        settings.models_builtin,
    )


def describe(catalog: Catalog) -> str:
    """One line for `citadel config check`: which models are served and from where."""
    local = sorted(n for n, m in catalog.models.items() if all(b.provider == "local" for b in m.backends))
    served = sorted(n for n in catalog.models if n not in local)
    parts = [f"{len(catalog.models)} models (default {catalog.default})"]
    if local:
        parts.append(f"on the local model: {', '.join(local)}")
    if served:
        parts.append(f"on model servers: {', '.join(served)}")
    return "; ".join(parts)
