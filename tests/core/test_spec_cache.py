"""The servicer's short-lived collection spec cache never lets a name skip validation or
cross tenants: it is keyed by (tenant, name as given), and only valid names are stored."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from citadel.server.auth.principal import Principal
from citadel.server.chain import Call
from citadel.server.descriptors import SERVICES
from citadel.server.errors import ApiError
from citadel.server.methods import method_specs
from citadel.server.servicers.vector import VectorServicer
from citadel.server.store.base import CollectionInfo, CollectionSpec

SEARCH = next(s for s in method_specs(SERVICES) if s.name == "SearchVectors")


class Store:
    def __init__(self) -> None:
        self.asked: list[str] = []

    async def get_collection(self, name: str) -> CollectionInfo:
        self.asked.append(name)
        return CollectionInfo(CollectionSpec(name=name, dimension=3, distance="cosine"), 0)


def _call(tenant: str) -> Call:
    call = Call(method=SEARCH, protocol="grpc")
    call.state["principal"] = Principal(subject=f"key:{tenant or 'shared'}", role=1, tenant=tenant)
    return call


def test_cached_per_tenant_and_name():
    store = Store()
    servicer = VectorServicer(store, None)

    async def run():
        a = await servicer._spec(_call("t"), "collection", "docs")
        b = await servicer._spec(_call("t"), "collection", "docs")  # cached
        c = await servicer._spec(_call(""), "collection", "docs")  # another namespace
        return a, b, c

    a, b, c = asyncio.run(run())
    assert store.asked == ["t.docs", "docs"]
    assert a is b and (a.name, c.name) == ("t.docs", "docs")


def test_an_invalid_name_is_refused_even_when_its_physical_name_is_cached():
    store = Store()
    servicer = VectorServicer(store, None)
    asyncio.run(servicer._spec(_call("t"), "collection", "docs"))  # caches t.docs
    with pytest.raises(ApiError) as e:
        # The shared namespace naming another tenant's collection by its stored name.
        asyncio.run(servicer._spec(_call(""), "collection", "t.docs"))
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert store.asked == ["t.docs"]
