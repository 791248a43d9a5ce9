"""The shared-state host and its proxy, over a real Unix socket: what a worker sees when it
calls the supervisor's store, cache, buckets or queue."""

from __future__ import annotations

import asyncio

import grpc
import pytest
import pytest_asyncio

from citadel.server.errors import ApiError
from citadel.server.store.base import Point, ScoredPoint
from citadel.server.workers.host import Host
from citadel.server.workers.proxy import LOST, HostConnection, Hosted

pytestmark = pytest.mark.asyncio


class Thing:
    def __init__(self) -> None:
        self.closed = False
        self.release = asyncio.Event()

    async def echo(self, *args, **kwargs):
        return args, kwargs

    async def results(self) -> list[ScoredPoint]:
        return [ScoredPoint(Point("a", [1.0, 2.0], {"k": [1, "x"]}, 3.5), 0.25)]

    async def missing(self, name: str):
        raise ApiError(grpc.StatusCode.NOT_FOUND, f"collection {name!r} does not exist")

    async def broken(self):
        raise KeyError("oops")

    async def unpicklable(self):
        return lambda: None

    async def slow(self):
        await self.release.wait()
        return "slow done"

    async def close(self) -> None:
        self.closed = True

    async def _private(self):
        return "never"

    def sync_method(self):
        return "never"


@pytest_asyncio.fixture
async def hosted():
    thing = Thing()
    host = Host({"thing": thing})
    path = await host.start()
    connection = await HostConnection.open(path)
    yield thing, host, connection, Hosted(connection, "thing")
    await connection.close()
    await host.close()


async def test_values_and_results_cross_intact(hosted):
    _, _, _, proxy = hosted
    assert await proxy.echo(1, "two", three=[3.0]) == ((1, "two"), {"three": [3.0]})
    [scored] = await proxy.results()
    assert scored == ScoredPoint(Point("a", [1.0, 2.0], {"k": [1, "x"]}, 3.5), 0.25)


async def test_api_errors_keep_their_code_and_message(hosted):
    _, _, _, proxy = hosted
    with pytest.raises(ApiError) as e:
        await proxy.missing("books")
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    assert e.value.message == "collection 'books' does not exist"


async def test_other_failures_are_internal_and_the_connection_survives(hosted):
    _, _, _, proxy = hosted
    with pytest.raises(ApiError) as e:
        await proxy.broken()
    assert e.value.code == grpc.StatusCode.INTERNAL and "thing.broken" in e.value.message
    with pytest.raises(ApiError) as e:
        await proxy.unpicklable()
    assert e.value.code == grpc.StatusCode.INTERNAL and "cannot be sent" in e.value.message
    assert await proxy.echo("still") == (("still",), {})


async def test_only_public_async_methods_of_known_targets(hosted):
    _, _, connection, proxy = hosted
    for target, method in (("thing", "_private"), ("thing", "sync_method"), ("nothing", "echo")):
        with pytest.raises(ApiError) as e:
            await connection.call(target, method)
        assert e.value.code == grpc.StatusCode.UNIMPLEMENTED, (target, method)
    with pytest.raises(AttributeError):
        proxy._private  # noqa: B018 - never sent


async def test_calls_run_concurrently(hosted):
    thing, _, _, proxy = hosted
    slow = asyncio.create_task(proxy.slow())
    assert await asyncio.wait_for(proxy.echo("fast"), 5) == (("fast",), {})  # not stuck behind slow
    assert not slow.done()
    thing.release.set()
    assert await asyncio.wait_for(slow, 5) == "slow done"


async def test_closing_the_proxy_leaves_the_real_object_to_its_owner(hosted):
    thing, _, _, proxy = hosted
    await proxy.close()
    assert not thing.closed


async def test_when_the_host_goes_away_calls_fail_unavailable_and_the_worker_is_told(hosted):
    thing, host, connection, proxy = hosted
    told = asyncio.Event()
    connection.on_lost(told.set)
    pending = asyncio.create_task(proxy.slow())
    await asyncio.sleep(0.05)
    closing = asyncio.create_task(host.close())
    await asyncio.wait_for(told.wait(), 5)
    with pytest.raises(ApiError) as e:
        await pending
    assert e.value.code == grpc.StatusCode.UNAVAILABLE and e.value.message == LOST
    with pytest.raises(ApiError) as e:
        await proxy.echo("late")
    assert e.value.code == grpc.StatusCode.UNAVAILABLE
    assert not closing.done()  # a call under way is finished, not cut off half-way
    thing.release.set()
    await asyncio.wait_for(closing, 5)
