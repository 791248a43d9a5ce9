"""A pending request is resolved just inside auth: never for a caller auth refuses."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from citadel.server.auth.api_keys import ApiKeyVerifier, new_key, parse_entries
from citadel.server.chain import Call, Chain, PendingRequest
from citadel.server.errors import ApiError
from citadel.server.interceptors.auth import AuthInterceptor
from citadel.server.interceptors.errors import ErrorsInterceptor
from citadel.server.metrics import Metrics
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.interceptors.test_chain_unit import SEARCH, Recorder, Servicer


class Body(PendingRequest):
    def __init__(self, order: list[str]) -> None:
        self.order = order

    async def resolve(self):
        self.order.append("resolved")
        return pb.SearchVectorsRequest(collection="c")


class Seen(Recorder):
    async def __call__(self, call, request, proceed):
        call.state.setdefault("order", []).append(f"{self.name}:{type(request).__name__}")
        return await proceed(call, request)


def _chain(servicer: Servicer) -> tuple[Chain, str]:
    key, hashed = new_key("reader")
    entries = parse_entries([{"id": "reader", "hash": hashed, "role": "reader"}])
    auth = AuthInterceptor(ApiKeyVerifier(entries), None, Metrics())
    chain = Chain(
        [ErrorsInterceptor(), Seen("before"), auth, Seen("after")],
        {"citadel.vector.v1.VectorService": servicer},
    )
    return chain, key


def test_the_request_is_resolved_after_auth_and_never_for_a_refused_caller():
    servicer = Servicer()
    chain, key = _chain(servicer)
    handler = chain.handler_for(SEARCH)
    order: list[str] = []
    refused = Call(method=SEARCH, protocol="rest", metadata={})
    with pytest.raises(ApiError) as e:
        asyncio.run(handler(refused, Body(order)))
    assert e.value.code == grpc.StatusCode.UNAUTHENTICATED and order == []
    admitted = Call(method=SEARCH, protocol="rest", metadata={"authorization": f"Bearer {key}"})
    asyncio.run(handler(admitted, Body(order)))
    assert order == ["resolved"]
    assert admitted.state["order"] == ["before:Body", "after:SearchVectorsRequest"]
    assert servicer.seen == [admitted]


def test_authenticate_up_front_and_reuse_the_principal():
    servicer = Servicer()
    chain, key = _chain(servicer)
    with pytest.raises(ApiError) as e:
        chain.authenticate({})
    assert e.value.code == grpc.StatusCode.UNAUTHENTICATED
    principal = chain.authenticate({"authorization": f"Bearer {key}"})
    assert principal.subject == "key:reader"
    call = Call(method=SEARCH, protocol="graphql", metadata={})  # no credentials: the principal stands
    call.state["principal"] = principal
    asyncio.run(chain.handler_for(SEARCH)(call, pb.SearchVectorsRequest()))
    assert servicer.seen == [call]


def test_without_an_auth_interceptor_requests_are_resolved_first():
    servicer = Servicer()
    chain = Chain([Seen("only")], {"citadel.vector.v1.VectorService": servicer})
    call = Call(method=SEARCH, protocol="rest")
    asyncio.run(chain.handler_for(SEARCH)(call, Body([])))
    assert call.state["order"] == ["only:SearchVectorsRequest"]
    assert chain.authenticate({}).subject == "anonymous"
