"""What a race between stores (or replicas) must end in, checked one way by every test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import grpc


async def one_create_wins(*creates: Awaitable[None]) -> None:
    """Runs the creates of one name at once: exactly one succeeds, every other is
    ALREADY_EXISTS (never INTERNAL)."""
    results = await asyncio.gather(*creates, return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["ApiError"] * (len(results) - 1) + ["NoneType"]
    assert all(r.code == grpc.StatusCode.ALREADY_EXISTS for r in results if r is not None), results
