"""Fixtures shared by the collection tests."""

from __future__ import annotations

import httpx
import pytest

from tests.adapters.protocols import Protocols


@pytest.fixture(scope="module")
def protocols(gateway):
    """Any RPC over gRPC, REST and GraphQL, on the test module's own `gateway`."""
    with httpx.Client(base_url=gateway.http_url, timeout=60) as http:
        yield Protocols(gateway.channel(), http)
