"""What a cached answer depends on comes from the method's cache option, never from field
names: SearchVectors declares `model_field: "model"`, so its key follows what that model name
resolves to; CACHE_KIND_EMBEDDING methods are left to the embedding service's per-text cache;
an option the interceptor cannot honour stops start-up."""

from __future__ import annotations

import asyncio

import pytest
from google.protobuf import descriptor_pb2, message_factory

from citadel.options.v1 import options_pb2
from citadel.server.cache.memory import MemoryCache
from citadel.server.chain import Call, Chain
from citadel.server.descriptors import SERVICES
from citadel.server.interceptors.cache import CacheInterceptor
from citadel.server.methods import PolicyError, method_specs
from citadel.server.metrics import Metrics
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.support.descriptor_pools import pool_with_options

SPECS = {s.name: s for s in method_specs(SERVICES)}
SEARCH = SPECS["SearchVectors"]


def test_the_contract_declares_searches_depend_on_their_model_and_embeddings_are_per_text():
    assert SEARCH.cache.model_field == "model"
    assert SPECS["GenerateEmbedding"].cache.kind == options_pb2.CACHE_KIND_EMBEDDING
    cache = CacheInterceptor(MemoryCache(100, 1 << 20), Metrics())
    assert cache.for_method(SPECS["GenerateEmbedding"]) is None  # the embedding service caches it
    assert options_pb2.CacheKind.DESCRIPTOR.values_by_name["CACHE_KIND_HEALTH"].GetOptions().deprecated


def test_a_search_by_text_misses_once_its_model_name_resolves_elsewhere():
    resolves_to = {"general": "general/384/local:minilm"}
    cache = CacheInterceptor(
        MemoryCache(100, 1 << 20), Metrics(), model_identity=lambda n: resolves_to[n or "general"]
    )
    answered: list[str] = []

    class Servicer:
        async def SearchVectors(self, request, call):
            answered.append(resolves_to["general"])
            return pb.SearchVectorsResponse(query_time_ms=len(answered))

    handler = Chain([cache], {"citadel.vector.v1.VectorService": Servicer()}).handler_for(SEARCH)
    request = pb.SearchVectorsRequest(collection="c", query_text="rivers", model="general")

    def search() -> tuple[float, str]:
        call = Call(method=SEARCH, protocol="grpc")
        reply = asyncio.run(handler(call, request))
        return reply.query_time_ms, call.response_metadata["cache-status"]

    assert search() == (1, "citadel; fwd=miss")
    assert search() == (1, "citadel; hit")
    resolves_to["general"] = "general/768/ollama:nomic"  # re-pointed
    assert search() == (2, "citadel; fwd=miss")
    assert search() == (2, "citadel; hit")
    assert answered == ["general/384/local:minilm", "general/768/ollama:nomic"]


def _spec(kind: int, model_field: str = "", ttl_seconds: int = 0):
    """A one-method service with the given cache option, in a descriptor pool of its own; its
    request has a string `model`, a repeated string `models` and an int32 `count`."""
    pool = pool_with_options()
    f = descriptor_pb2.FileDescriptorProto(
        name="cache_test.proto", package="cache.test", dependency=["citadel/options/v1/options.proto"]
    )
    req = f.message_type.add(name="Req")
    field = descriptor_pb2.FieldDescriptorProto
    req.field.add(name="model", number=1, type=field.TYPE_STRING)
    req.field.add(name="models", number=2, type=field.TYPE_STRING, label=field.LABEL_REPEATED)
    req.field.add(name="count", number=3, type=field.TYPE_INT32)
    method = f.service.add(name="Svc").method.add(
        name="Get", input_type=".cache.test.Req", output_type=".cache.test.Req"
    )
    method.options.Extensions[options_pb2.access].role = options_pb2.ROLE_READER
    option = method.options.Extensions[options_pb2.cache]
    option.kind, option.model_field, option.ttl_seconds = kind, model_field, ttl_seconds
    pool.Add(f)
    service = pool.FindServiceByName("cache.test.Svc")
    message_factory.GetMessageClass(service.methods[0].input_type)
    return method_specs([service])[0]


def test_options_the_interceptor_cannot_honour_stop_start_up():
    cache = CacheInterceptor(MemoryCache(100, 1 << 20), Metrics())
    assert cache.for_method(_spec(options_pb2.CACHE_KIND_SEARCH, "model")) is not None
    for bad in ("nope", "models", "count"):
        with pytest.raises(
            PolicyError, match=f"/cache.test.Svc/Get: cache model_field '{bad}' is not a string field"
        ):
            cache.for_method(_spec(options_pb2.CACHE_KIND_SEARCH, bad))
    with pytest.raises(PolicyError, match=r"cached per text .*\[cache.ttl_seconds\] embedding"):
        cache.for_method(_spec(options_pb2.CACHE_KIND_EMBEDDING, ttl_seconds=60))
    with pytest.raises(PolicyError, match="cache kind 4 has no default TTL"):
        cache.for_method(_spec(options_pb2.CACHE_KIND_HEALTH))
    assert cache.for_method(_spec(options_pb2.CACHE_KIND_HEALTH, ttl_seconds=5)) is not None
