"""Settings are parsed once, at load: the structured sections become typed objects in
`Settings.parsed`, which the gateway's parts read; the cache interceptor's counts are read
through its public `stats()`."""

from __future__ import annotations

import asyncio
import pickle

import pytest

from citadel.options.v1 import options_pb2
from citadel.server.auth.api_keys import new_key
from citadel.server.auth.principal import Principal
from citadel.server.cache.memory import MemoryCache
from citadel.server.chain import Call, Chain
from citadel.server.config import ConfigError, Settings
from citadel.server.descriptors import SERVICES
from citadel.server.interceptors.cache import CacheInterceptor
from citadel.server.methods import method_specs
from citadel.server.metrics import Metrics
from citadel.vector.v1 import vector_service_pb2 as pb

CONFIG = """
[server]
cors_allow_origins = ["http://localhost:3000"]
[cache.ttl_seconds]
search = 7
health = 60
[[auth.api_keys]]
id = "ci"
hash = "{hash}"
role = "writer"
[rate_limits.buckets]
"key:ci" = {{rate = 5, burst = 10}}
"""


@pytest.fixture
def settings(tmp_path) -> Settings:
    _, hashed = new_key("ci")
    path = tmp_path / "citadel.toml"
    path.write_text(CONFIG.format(hash=hashed))
    return Settings.load(path, env={})


def test_load_parses_every_section_into_typed_objects(settings):
    parsed = settings.parsed
    assert parsed is settings.parsed  # read, not parsed again
    assert parsed.api_keys["ci"].role == options_pb2.ROLE_WRITER
    assert (parsed.rate_limits["key:ci"].rate, parsed.rate_limits["key:ci"].burst) == (5, 10)
    assert parsed.cache_ttls[options_pb2.CACHE_KIND_SEARCH] == 7.0
    assert parsed.cors is not None and parsed.cors.allows("http://localhost:3000")
    assert parsed.catalog.default == "general" and len(parsed.catalog.models) == 9


def test_the_retired_health_kind_still_loads_and_sets_nothing(settings):
    assert options_pb2.CACHE_KIND_HEALTH not in settings.parsed.cache_ttls
    settings.cache_ttl_seconds = {"health": 0}
    with pytest.raises(ConfigError, match="cache.ttl_seconds.health: must be a positive number"):
        settings.validate()


def test_a_setting_changed_after_load_is_parsed_again_when_read(settings):
    before = settings.parsed
    settings.cache_ttl_seconds = {"search": 9}
    assert settings.parsed is not before
    assert settings.parsed.cache_ttls[options_pb2.CACHE_KIND_SEARCH] == 9.0
    settings.rate_limits = {"key:nobody": {"rate": 1}}
    with pytest.raises(ConfigError, match="'nobody' is not a configured auth.api_keys id"):
        settings.parsed  # noqa: B018 - reading it parses, and names the mistake


def test_a_worker_process_gets_the_settings_and_parses_them_itself(settings):
    copy = pickle.loads(pickle.dumps(settings))
    assert copy == settings
    assert copy.parsed is not settings.parsed and copy.parsed == settings.parsed


def test_flags_given_to_load_are_validated_with_the_rest():
    settings = Settings.load(None, env={}, overrides={"grpc_port": 0, "auth_enabled": False})
    assert (settings.grpc_port, settings.auth_enabled) == (0, False)
    with pytest.raises(ConfigError, match=r"server.http_port: 70000 is not a port"):
        Settings.load(None, env={}, overrides={"http_port": 70000})


def test_cache_stats_are_per_tenant_or_summed_for_the_operator():
    search = next(s for s in method_specs(SERVICES) if s.name == "SearchVectors")

    class Servicer:
        async def SearchVectors(self, request, call):
            return pb.SearchVectorsResponse()

    cache = CacheInterceptor(MemoryCache(100, 1 << 20), Metrics())
    handler = Chain([cache], {"citadel.vector.v1.VectorService": Servicer()}).handler_for(search)
    request = pb.SearchVectorsRequest(collection="c", query_vector=[1.0])
    for tenant, calls in (("acme", 3), ("globex", 1)):
        for _ in range(calls):
            call = Call(method=search, protocol="grpc")
            call.state["principal"] = Principal("key:x", options_pb2.ROLE_READER, tenant)
            asyncio.run(handler(call, request))
    acme = cache.stats("acme")
    assert acme.backend == "memory" and acme.backend_errors == 0
    assert [(m.path, m.hits, m.misses, m.coalesced) for m in acme.methods] == [(search.path, 2, 1, 0)]
    everyone = cache.stats("")
    assert [(m.hits, m.misses) for m in everyone.methods] == [(2, 2)]
    assert cache.stats("initech").methods == []
