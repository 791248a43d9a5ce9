"""The chain in process: per-method steps from `for_method`, the interceptors' own steps
(auth off, rate limits off, cache policy), and request ids."""

from __future__ import annotations

import asyncio
import uuid

from citadel.server.auth.principal import ANONYMOUS
from citadel.server.cache.memory import MemoryCache
from citadel.server.chain import Call, Chain, new_request_id
from citadel.server.descriptors import SERVICES
from citadel.server.interceptors.auth import AuthInterceptor
from citadel.server.interceptors.cache import DEFAULT_TTL_SECONDS, CacheInterceptor
from citadel.server.interceptors.rate_limit import RateLimitInterceptor
from citadel.server.methods import method_specs
from citadel.server.metrics import Metrics
from citadel.server.ratelimit.buckets import InProcessBuckets, parse_limits
from citadel.vector.v1 import vector_service_pb2 as pb

SPECS = {s.name: s for s in method_specs(SERVICES) if s.service == "citadel.vector.v1.VectorService"}
SEARCH = SPECS["SearchVectors"]


class Servicer:
    def __init__(self) -> None:
        self.seen: list[Call] = []

    async def SearchVectors(self, request, call):
        self.seen.append(call)
        return pb.SearchVectorsResponse(query_time_ms=1.0)

    async def ListCollections(self, request, call):
        self.seen.append(call)
        return pb.ListCollectionsResponse()


class Recorder:
    """Records its name on the call; `for_method` as given (absent when None)."""

    def __init__(self, name: str, for_method=None) -> None:
        self.name = name
        if for_method is not None:
            self.for_method = for_method

    async def __call__(self, call, request, proceed):
        call.state.setdefault("order", []).append(self.name)
        return await proceed(call, request)


def _call(spec=SEARCH, **metadata) -> Call:
    return Call(method=spec, protocol="grpc", metadata=metadata)


def test_for_method_leaves_out_or_replaces_an_interceptor():
    replaced = Recorder("replacement")
    chain = Chain(
        [
            Recorder("plain"),
            Recorder("skipped", for_method=lambda spec: None),
            Recorder("original", for_method=lambda spec: replaced),
            Recorder("only-search", for_method=lambda spec: Recorder("search") if spec is SEARCH else None),
        ],
        {"citadel.vector.v1.VectorService": Servicer()},
    )
    search, listing = _call(), _call(SPECS["ListCollections"])
    asyncio.run(chain.handler_for(SEARCH)(search, pb.SearchVectorsRequest()))
    asyncio.run(chain.handler_for(SPECS["ListCollections"])(listing, pb.ListCollectionsRequest()))
    assert search.state["order"] == ["plain", "replacement", "search"]
    assert listing.state["order"] == ["plain", "replacement"]


def test_auth_off_gives_every_call_the_anonymous_admin():
    metrics = Metrics()
    servicer = Servicer()
    chain = Chain([AuthInterceptor.disabled(metrics)], {"citadel.vector.v1.VectorService": servicer})
    for spec in (SEARCH, SPECS["DeleteCollection"]):
        assert AuthInterceptor.disabled(metrics).for_method(spec) is not None
    call = _call()
    asyncio.run(chain.handler_for(SEARCH)(call, pb.SearchVectorsRequest()))
    assert servicer.seen == [call] and call.state["principal"] is ANONYMOUS


def test_rate_limits_run_only_when_configured():
    metrics = Metrics()
    assert RateLimitInterceptor({}, InProcessBuckets(), metrics).for_method(SEARCH) is None
    limited = RateLimitInterceptor(
        parse_limits({"role:admin": {"rate": 1, "burst": 1}}), InProcessBuckets(), metrics
    )
    assert limited.for_method(SEARCH) is limited


def test_cache_steps_follow_each_methods_option():
    metrics = Metrics()
    cache = CacheInterceptor(MemoryCache(100, 1 << 20), metrics, dict(DEFAULT_TTL_SECONDS))
    assert cache.for_method(SPECS["CreateCollection"]) is not None  # invalidates: bumps a version
    assert cache.for_method(SPECS["ListCollections"]) is None  # declares no caching
    watch = next(s for s in method_specs(SERVICES) if s.name == "WatchBatchJob")
    assert cache.for_method(watch) is None  # streams are never cached
    servicer = Servicer()
    chain = Chain([cache], {"citadel.vector.v1.VectorService": servicer})
    handler = chain.handler_for(SEARCH)
    request = pb.SearchVectorsRequest(collection="c", query_vector=[1.0])
    for _ in range(2):
        asyncio.run(handler(_call(**{"cache-control": "no-cache"}), request))
    asyncio.run(handler(_call(), request))
    asyncio.run(handler(_call(), request))  # served from the cache
    assert len(servicer.seen) == 3
    value = metrics.registry.get_sample_value
    path = "/citadel.vector.v1.VectorService/SearchVectors"
    assert value("citadel_cache_lookups_total", {"method": path, "result": "bypass"}) == 2
    assert value("citadel_cache_lookups_total", {"method": path, "result": "miss"}) == 1
    assert value("citadel_cache_lookups_total", {"method": path, "result": "hit"}) == 1
    # Its step for the method, called directly (not through a chain), behaves the same.
    direct = _call(**{"cache-control": "no-cache"})
    step = cache.for_method(SEARCH)
    asyncio.run(step(direct, request, lambda call, request: servicer.SearchVectors(request, call)))
    assert servicer.seen[-1] is direct
    assert value("citadel_cache_lookups_total", {"method": path, "result": "bypass"}) == 3


def test_request_ids_are_uuid4_hex_and_distinct():
    ids = [new_request_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for rid in ids:
        u = uuid.UUID(hex=rid)
        assert (u.hex, u.version, u.variant) == (rid, 4, uuid.RFC_4122)
    assert Call(method=SEARCH, protocol="grpc").request_id != Call(method=SEARCH, protocol="grpc").request_id
