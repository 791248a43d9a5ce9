"""Gateway settings: defaults, then a TOML file, then CITADEL_* environment variables, then flags.

Every setting has one TOML key (`section.name`) and one environment variable (CITADEL_ and the
field name in capitals). Unknown keys and wrong types fail start-up with the key named.
Secrets may come from the environment or from a file (`*_file`), and never appear in repr or logs.
Loopback is the default bind address; nothing listens beyond this machine unless asked.

The structured sections (API keys, rate-limit buckets, cache TTLs, the model catalog, CORS) are
parsed once, when the settings are validated at load, into `Settings.parsed`; every part of
the gateway reads them from there, so a mistake is a start-up (and `citadel config check`)
error naming its key, and nothing parses a section again.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from citadel.adapters.cors import CorsPolicy
from citadel.server.auth.api_keys import ApiKeyEntry, parse_entries
from citadel.server.cache.ttl import ttl_table
from citadel.server.models.catalog import Catalog, catalog_from_settings
from citadel.server.ratelimit.buckets import Limit, parse_limits
from citadel.server.store.qdrant_options import QdrantOptions
from citadel.server.store.qdrant_placement import PlacementPolicy
from citadel.server.tracing import check_settings

KNOWN_ENGINES = ("auto", "edge", "qdrant-local")


class ConfigError(ValueError):
    """A setting is unknown or has the wrong type or value; the message names it."""


def _s(key: str, default: Any = MISSING, secret: bool = False, factory: Any = MISSING):
    kwargs: dict[str, Any] = {"metadata": {"key": key}, "repr": not secret}
    if factory is not MISSING:
        kwargs["default_factory"] = factory
    else:
        kwargs["default"] = default
    return field(**kwargs)


@dataclass(frozen=True)
class Parsed:
    """The structured sections of a `Settings`, as the parts of the gateway use them."""

    api_keys: dict[str, ApiKeyEntry]  # auth.api_keys, by key id
    rate_limits: dict[str, Limit]  # rate_limits.buckets, by bucket name
    cache_ttls: dict[int, float]  # cache.ttl_seconds over the defaults, by cache kind
    catalog: Catalog  # models.*
    cors: CorsPolicy | None  # server.cors_*; None: CORS is off


@dataclass
class Settings:
    # [server]
    host: str = _s("server.host", "127.0.0.1")
    grpc_port: int = _s("server.grpc_port", 8081)
    http_port: int = _s("server.http_port", 8000)
    data_dir: Path = _s("server.data_dir", factory=lambda: Path(".citadel-data"))
    max_message_bytes: int = _s("server.max_message_bytes", 64 * 1024 * 1024)  # large upserts must fit
    grace_seconds: float = _s("server.grace_seconds", 10.0)  # in-flight calls get this on shutdown
    log_level: str = _s("server.log_level", "INFO")
    access_log: bool = _s("server.access_log", True)  # one structured line per request
    startup_timeout_seconds: float = _s("server.startup_timeout_seconds", 30.0)  # per component
    # Gateway processes sharing the ports (SO_REUSEPORT); one Python process uses one core.
    workers: int = _s("server.workers", 1)
    # Browser origins (scheme://host[:port]) allowed to call port 8000 across origins; empty: off.
    cors_allow_origins: list = _s("server.cors_allow_origins", factory=list)
    cors_allow_headers: list = _s(
        "server.cors_allow_headers",
        factory=lambda: ["authorization", "content-type", "x-request-id", "x-request-timeout", "cache-control"],
    )
    cors_allow_methods: list = _s("server.cors_allow_methods", factory=lambda: ["GET", "POST", "DELETE"])
    cors_max_age_seconds: int = _s("server.cors_max_age_seconds", 600)  # how long browsers keep a preflight
    # Port 8000's replies of at least this many bytes are gzip-compressed for clients that accept it.
    gzip_min_bytes: int = _s("server.gzip_min_bytes", 1024)
    # [store]
    engine: str = _s("store.engine", "auto")  # embedded engine: auto | edge | qdrant-local
    qdrant_url: str = _s("store.qdrant_url", "")  # Qdrant server or cluster; empty: embedded
    qdrant_api_key: str = _s("store.qdrant_api_key", "", secret=True)
    # How the gateway reaches Qdrant, and the layout of the collections it creates there
    # (store/qdrant_options.py; 0 or "": Qdrant's own default).
    qdrant_prefer_grpc: bool = _s("store.qdrant_prefer_grpc", True)  # gRPC on qdrant_grpc_port; false: REST
    qdrant_grpc_port: int = _s("store.qdrant_grpc_port", 6334)
    qdrant_timeout_seconds: float = _s("store.qdrant_timeout_seconds", 10.0)  # per request to Qdrant
    qdrant_pool_size: int = _s("store.qdrant_pool_size", 4)  # gRPC channels, or REST keep-alive connections
    qdrant_shard_number: int = _s("store.qdrant_shard_number", 0)
    qdrant_replication_factor: int = _s("store.qdrant_replication_factor", 0)
    qdrant_write_consistency_factor: int = _s("store.qdrant_write_consistency_factor", 0)
    qdrant_read_consistency: str = _s("store.qdrant_read_consistency", "")  # all | majority | quorum | N
    qdrant_hnsw_m: int = _s("store.qdrant_hnsw_m", 0)
    qdrant_hnsw_ef_construct: int = _s("store.qdrant_hnsw_ef_construct", 0)
    qdrant_quantization: str = _s("store.qdrant_quantization", "")  # int8: scalar, searches rescore
    qdrant_quantization_oversampling: float = _s("store.qdrant_quantization_oversampling", 2.0)
    qdrant_on_disk_vectors: bool = _s("store.qdrant_on_disk_vectors", False)
    # Where collections live on Qdrant (store/qdrant_placement.py): "partitioned" shares one physical
    # collection per vector layout, partitioned by tenant and collection; "dedicated": one each;
    # "auto": partitioned on a Qdrant server, dedicated in local mode (it has no payload indexes).
    qdrant_placement: str = _s("store.qdrant_placement", "auto")
    qdrant_dedicated_tenants: list = _s("store.qdrant_dedicated_tenants", factory=list)  # one each, always
    # Embedded engine: indexed segments keep their f32 vectors in a memory-mapped file, not read
    # into memory (searches walk the int8 copy and rescore a few candidates on them).
    edge_on_disk_vectors: bool = _s("store.edge_on_disk_vectors", True)
    # [redis]
    redis_url: str = _s("redis.url", "")  # shared cache, rate limits and job queue; empty: in process
    redis_optional: bool = _s("redis.optional", False)  # start without it (in process) if unreachable
    redis_cluster: bool = _s("redis.cluster", False)  # redis.url is one node of a Redis Cluster
    # [auth]
    auth_enabled: bool = _s("auth.enabled", True)  # off only when asked, with a warning
    api_keys: list = _s("auth.api_keys", factory=list)  # [{id, hash, role, tenant}]
    jwt_hs256_secret: str = _s("auth.jwt_hs256_secret", "", secret=True)
    jwt_public_key_file: str = _s("auth.jwt_public_key_file", "")  # PEM, for RS256
    jwks_file: str = _s("auth.jwks_file", "")  # JSON Web Key Set, for RS256
    jwt_audience: str = _s("auth.jwt_audience", "")
    jwt_issuer: str = _s("auth.jwt_issuer", "")
    # [rate_limits]: {"role:reader": {rate, burst}, "key:ID": {...}, "tenant:ID": {...}}
    rate_limits: dict = _s("rate_limits.buckets", factory=dict)
    # [jobs]
    jobs_workers: int = _s("jobs.workers", 3)  # chunks processed at once by this replica
    jobs_chunk_size: int = _s("jobs.chunk_size", 100)  # items per chunk (one upsert each)
    jobs_lease_seconds: float = _s("jobs.lease_seconds", 120.0)  # longer than the slowest chunk
    jobs_max_attempts: int = _s("jobs.max_attempts", 5)  # then the chunk is dead-lettered
    # A finished job (its record, errors, results, idempotency key, place in its tenant's list)
    # is kept this long after it ends, then removed (Redis: expired; SQLite: deleted).
    jobs_retention_seconds: float = _s("jobs.retention_seconds", 86_400.0)
    # A re-embed's wait after switching a collection before it carries over what was still
    # written to the old embeddings: more than a servicer's cached spec (2 s) plus the time a
    # write may take before it looks again (1 s; servicers/vector.py).
    jobs_reembed_settle_seconds: float = _s("jobs.reembed_settle_seconds", 5.0)
    # [models]: the catalog is a table of models, each with its pattern, strategy and backends,
    # on top of the nine built-in models on the in-process local model (see models/catalog.py).
    models_default: str = _s("models.default", "general")
    models_catalog: dict = _s("models.catalog", factory=dict)  # adds models or replaces built-in ones
    models_builtin: bool = _s("models.builtin", True)  # the nine built-in models on the local model
    models_realtime_budget: int = _s("models.realtime_budget", 32)  # hybrid: texts answered inline
    models_health_interval_seconds: float = _s("models.health_interval_seconds", 1.0)
    models_request_timeout_seconds: float = _s("models.request_timeout_seconds", 30.0)  # no deadline
    models_resilience: dict = _s("models.resilience", factory=dict)  # breaker, ejection, retry knobs
    # [cache]
    cache_enabled: bool = _s("cache.enabled", True)
    cache_max_entries: int = _s("cache.max_entries", 100_000)
    cache_max_bytes: int = _s("cache.max_bytes", 256 * 1024 * 1024)
    cache_ttl_seconds: dict = _s("cache.ttl_seconds", factory=dict)  # {kind: seconds}
    # [limits]: what one request may cost; each error names its setting (README "Security").
    rest_body_bytes: int = _s("limits.rest_body_bytes", 64 * 1024 * 1024)  # REST request body
    rest_response_bytes: int = _s("limits.rest_response_bytes", 64 * 1024 * 1024)  # REST reply JSON
    graphql_body_bytes: int = _s("limits.graphql_body_bytes", 1024 * 1024)  # HTTP body or WS message
    graphql_document_cache_bytes: int = _s("limits.graphql_document_cache_bytes", 4 * 1024 * 1024)
    ws_subscriptions_per_connection: int = _s("limits.ws_subscriptions_per_connection", 16)
    ws_subscriptions_per_key: int = _s("limits.ws_subscriptions_per_key", 64)
    embed_texts_per_call: int = _s("limits.embed_texts_per_call", 128)  # real-time; more: BatchService
    embed_chars_per_text: int = _s("limits.embed_chars_per_text", 32_768)
    auto_indexes_per_collection: int = _s("limits.auto_indexes_per_collection", 16)
    vectors_per_upsert: int = _s("limits.vectors_per_upsert", 100_000)  # more: BatchService
    # [tracing]: OpenTelemetry, needs the `tracing` extra (see server/tracing/)
    tracing_enabled: bool = _s("tracing.enabled", False)
    tracing_exporter: str = _s("tracing.exporter", "otlp")  # otlp (OTLP/HTTP) | console | none
    tracing_endpoint: str = _s("tracing.endpoint", "http://127.0.0.1:4318/v1/traces")
    tracing_service_name: str = _s("tracing.service_name", "citadel")
    tracing_sample_ratio: float = _s("tracing.sample_ratio", 1.0)  # of new traces; callers' choice kept

    def __setattr__(self, name: str, value: Any) -> None:
        # A setting changed after validation (a test, a flag) is parsed again when next read.
        object.__setattr__(self, name, value)
        if name != "_parsed":
            object.__setattr__(self, "_parsed", None)

    def __getstate__(self) -> dict[str, Any]:
        # Worker processes get the settings and parse them themselves.
        return {**self.__dict__, "_parsed": None}

    @property
    def parsed(self) -> Parsed:
        """The structured sections, parsed by `validate()` (at load)."""
        if self._parsed is None:
            self.validate()
        return self._parsed

    @classmethod
    def load(
        cls,
        config_file: Path | None = None,
        env: dict[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Defaults, then `config_file` (or $CITADEL_CONFIG), then `env`, then `overrides`
        (command-line flags, by field name, already typed), validated and parsed once."""
        env = dict(os.environ if env is None else env)
        settings = cls()
        config_file = config_file or (Path(env["CITADEL_CONFIG"]) if env.get("CITADEL_CONFIG") else None)
        if config_file is not None:
            settings.apply_toml(config_file)
        settings.apply_env(env)
        for name, value in (overrides or {}).items():
            setattr(settings, name, value)
        settings.validate()
        return settings

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        return cls.load(None, env)

    def apply_toml(self, path: Path) -> None:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {str(path)!r} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        by_key = {f.metadata["key"]: f for f in fields(self)}
        for section, table in data.items():
            if not isinstance(table, dict):
                raise ConfigError(f"{section}: expected a [{section}] table")
            for name, raw in table.items():
                key = f"{section}.{name}"
                secret_file = key.endswith("_file") and by_key.get(key[: -len("_file")])
                if key not in by_key and not secret_file:
                    raise ConfigError(f"{key}: unknown setting (see citadel.example.toml)")
                if secret_file:
                    setattr(self, secret_file.name, _read_secret(key, raw))
                    continue
                f = by_key[key]
                setattr(self, f.name, _coerce(key, raw, getattr(self, f.name)))

    def apply_env(self, env: dict[str, str]) -> None:
        for f in fields(self):
            var = f"CITADEL_{f.name.upper()}"
            raw = env.get(var)
            if raw is None and f"{var}_FILE" in env:
                raw = _read_secret(f"{var}_FILE", env[f"{var}_FILE"])
            # QDRANT_URL, QDRANT_API_KEY and REDIS_URL are honoured too: the names Qdrant and
            # Redis users already set (a CITADEL_ variable wins when both are).
            if raw is None and f.name in ("qdrant_url", "qdrant_api_key", "redis_url"):
                raw = env.get(f.name.upper())
            if raw is not None:
                setattr(self, f.name, _coerce(var, raw, getattr(self, f.name), from_text=True))

    def missing_credentials(self) -> str:
        """Why `serve` would refuse these settings for want of credentials ('' when it would not):
        authentication on, and neither API keys nor a JWT key configured."""
        if self.auth_enabled and not (
            self.api_keys or self.jwt_hs256_secret or self.jwt_public_key_file or self.jwks_file
        ):
            return (
                "auth.enabled is true but no credentials are configured: add auth.api_keys "
                "(`citadel keys create`) or a JWT key, or run with --insecure-no-auth for development"
            )
        return ""

    def validate(self) -> None:
        """Every setting's value is checked, and the structured sections are parsed into
        `self.parsed`; the first mistake is a ConfigError naming its key."""
        for name in ("grpc_port", "http_port"):
            if not 0 <= getattr(self, name) <= 65535:
                raise ConfigError(f"server.{name}: {getattr(self, name)} is not a port (0-65535)")
        if self.engine not in KNOWN_ENGINES:
            raise ConfigError(f"store.engine: {self.engine!r} is not one of {', '.join(KNOWN_ENGINES)}")
        for key, value, low in (
            ("server.workers", self.workers, 1),
            ("server.gzip_min_bytes", self.gzip_min_bytes, 0),
            ("jobs.workers", self.jobs_workers, 1),
            ("jobs.chunk_size", self.jobs_chunk_size, 1),
            ("jobs.lease_seconds", self.jobs_lease_seconds, 1),
            ("jobs.max_attempts", self.jobs_max_attempts, 1),
            ("jobs.retention_seconds", self.jobs_retention_seconds, 1),
            ("jobs.reembed_settle_seconds", self.jobs_reembed_settle_seconds, 0),
        ):
            if value < low:
                raise ConfigError(f"{key}: must be at least {low}, got {value}")
        for f in fields(self):
            key = f.metadata["key"]
            if (key.startswith("limits.") or key == "server.max_message_bytes") and getattr(self, f.name) < 1:
                raise ConfigError(f"{key}: must be at least 1, got {getattr(self, f.name)}")
        for key, value in (
            ("server.max_message_bytes", self.max_message_bytes),
            ("limits.rest_body_bytes", self.rest_body_bytes),
            ("limits.rest_response_bytes", self.rest_response_bytes),
            ("limits.graphql_body_bytes", self.graphql_body_bytes),
        ):
            if value < 1024:
                raise ConfigError(f"{key}: must be at least 1024, got {value}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"server.log_level: {self.log_level!r} is not DEBUG, INFO, WARNING or ERROR")
        try:
            check_settings(self)
            QdrantOptions.from_settings(self)
            PlacementPolicy.from_settings(self, server=bool(self.qdrant_url))
            cors = CorsPolicy.from_settings(self)
            keys = parse_entries(self.api_keys)
            parsed = Parsed(
                api_keys=keys,
                rate_limits=parse_limits(self.rate_limits, keys.keys()),
                cache_ttls=ttl_table(self.cache_ttl_seconds),
                catalog=catalog_from_settings(self),
                cors=cors,
            )
        except ValueError as e:  # the owners' parsers name the key; here it stops start-up
            raise ConfigError(str(e)) from None
        self._parsed = parsed


def _read_secret(key: str, path: Any) -> str:
    try:
        return Path(str(path)).read_text().strip()
    except OSError as e:
        raise ConfigError(f"{key}: cannot read {str(path)!r}: {e.strerror}") from None


def _coerce(key: str, raw: Any, current: Any, from_text: bool = False) -> Any:
    """`raw` as the type of the default, or ConfigError naming `key`."""
    kind = type(current)
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            if from_text and str(raw).lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return str(raw).lower() in ("1", "true", "yes", "on")
            raise ValueError
        if kind in (int, float):
            if isinstance(raw, bool) or not (from_text or isinstance(raw, (int, float))):
                raise ValueError
            return kind(raw)
        if isinstance(current, Path):  # the default is a PosixPath: `kind is Path` never holds
            if not isinstance(raw, (str, Path)):
                raise ValueError
            return Path(raw)
        if kind in (list, dict):
            if from_text:
                raw = json.loads(raw)
            if not isinstance(raw, kind):
                raise ValueError
            return raw
        if not isinstance(raw, str):
            raise ValueError
        return raw
    except (ValueError, TypeError):
        noun = {bool: "a boolean", int: "an integer", float: "a number", list: "a list", dict: "a table"}
        raise ConfigError(f"{key}: expected {noun.get(kind, 'a string')}, got {raw!r}") from None
