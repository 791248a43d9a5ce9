"""A call costs one token per element of its method's cost field (GenerateEmbedding: per text),
in process and in Redis; a cost field the request does not have stops start-up."""

from __future__ import annotations

import asyncio

import grpc
import pytest
import redis.asyncio as aioredis
from google.protobuf import descriptor_pb2, message_factory

from citadel.options.v1 import options_pb2
from citadel.server.chain import Call, Chain
from citadel.server.descriptors import SERVICES
from citadel.server.errors import ApiError
from citadel.server.interceptors.rate_limit import RateLimitInterceptor, cost_field_of
from citadel.server.methods import PolicyError, method_specs
from citadel.server.metrics import Metrics
from citadel.server.ratelimit.buckets import InProcessBuckets, Limit, parse_limits
from citadel.server.ratelimit.redis_buckets import RedisBuckets
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.support.descriptor_pools import pool_with_options

SPECS = {s.name: s for s in method_specs(SERVICES)}


def test_generate_embedding_declares_its_texts_as_its_cost():
    assert cost_field_of(SPECS["GenerateEmbedding"]) == "texts"
    assert cost_field_of(SPECS["SearchVectors"]) == ""


async def _takes(buckets) -> list:
    limit = Limit(rate=0.001, burst=10)  # no refill to speak of during the test
    return [
        (await buckets.take("k", limit, 4)).allowed,
        (await buckets.take("k", limit, 4)).allowed,
        (await buckets.take("k", limit, 4)).allowed,  # 2 left: refused
        (await buckets.take("k", limit, 2)).allowed,
        (await buckets.take("big", limit, 50)).allowed,  # more than a bucket: a full one
        (await buckets.take("big", limit, 1)).allowed,
    ]


def test_in_process_buckets_take_the_cost():
    assert asyncio.run(_takes(InProcessBuckets())) == [True, True, False, True, True, False]


def test_redis_buckets_take_the_cost(redis_server):
    async def run():
        client = aioredis.from_url(redis_server.url)
        try:
            return await _takes(RedisBuckets(client, prefix="cost-test:"))
        finally:
            await client.aclose()

    assert asyncio.run(run()) == [True, True, False, True, True, False]


class Embeddings:
    async def GenerateEmbedding(self, request, call):
        return pb.GenerateEmbeddingResponse(model="m")


def test_a_call_with_many_texts_takes_one_token_per_text():
    limits = parse_limits({"role:anonymous": {"rate": 0.001, "burst": 5}})
    interceptor = RateLimitInterceptor(limits, InProcessBuckets(), Metrics())
    spec = SPECS["GenerateEmbedding"]
    handler = Chain([interceptor], {"citadel.vector.v1.VectorService": Embeddings()}).handler_for(spec)

    def call(request):
        return asyncio.run(handler(Call(method=spec, protocol="grpc"), request))

    call(pb.GenerateEmbeddingRequest(texts=["a", "b", "c"]))  # 3 of 5
    with pytest.raises(ApiError) as refused:
        call(pb.GenerateEmbeddingRequest(texts=["a", "b", "c"]))
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "this call costs 3 tokens, one per texts entry" in refused.value.message
    call(pb.GenerateEmbeddingRequest(text="one"))  # a single text costs one
    call(pb.GenerateEmbeddingRequest(text="two"))
    with pytest.raises(ApiError):
        call(pb.GenerateEmbeddingRequest(text="three"))


def _spec_with_cost_field(name: str, client_streaming: bool = False):
    """A one-method service whose rate_limit option names `name`, in a pool of its own."""
    pool = pool_with_options()
    f = descriptor_pb2.FileDescriptorProto(
        name="cost_test.proto", package="cost.test", dependency=["citadel/options/v1/options.proto"]
    )
    f.message_type.add(name="Req").field.add(
        name="items", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING
    )
    method = f.service.add(name="Svc").method.add(
        name="Do",
        input_type=".cost.test.Req",
        output_type=".cost.test.Req",
        client_streaming=client_streaming,
    )
    method.options.Extensions[options_pb2.access].role = options_pb2.ROLE_READER
    method.options.Extensions[options_pb2.rate_limit].cost_field = name
    pool.Add(f)
    service = pool.FindServiceByName("cost.test.Svc")
    message_factory.GetMessageClass(service.methods[0].input_type)
    return method_specs([service])[0]


def test_a_cost_field_the_gateway_cannot_count_stops_start_up():
    with pytest.raises(PolicyError, match="rate_limit.cost_field 'nope' is not a repeated field of Req"):
        cost_field_of(_spec_with_cost_field("nope"))
    with pytest.raises(PolicyError, match="'items' is not a repeated field"):  # singular
        cost_field_of(_spec_with_cost_field("items"))
    with pytest.raises(PolicyError, match="needs a unary request"):
        cost_field_of(_spec_with_cost_field("items", client_streaming=True))
