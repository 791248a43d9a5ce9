"""Which store the settings open: the embedded engine by default, local mode when asked or
when the data dir already holds local-mode collections, a Qdrant server when QDRANT_URL is set."""

from __future__ import annotations

import grpc
import pytest

from citadel.server.config import Settings
from citadel.server.errors import ApiError
from citadel.server.store.base import CollectionSpec
from citadel.server.store.edge import EdgeStore
from citadel.server.store.factory import choose_engine, open_store
from citadel.server.store.qdrant import QdrantStore

pytestmark = pytest.mark.asyncio


async def test_auto_opens_the_embedded_engine(tmp_path):
    store = await open_store(Settings(data_dir=tmp_path))
    try:
        assert isinstance(store, EdgeStore)
        assert (tmp_path / "edge").is_dir()
    finally:
        await store.close()


async def test_explicit_engines(tmp_path):
    assert choose_engine("edge", tmp_path) == "edge"
    store = await open_store(Settings(engine="qdrant-local", data_dir=tmp_path))
    try:
        assert isinstance(store, QdrantStore)
    finally:
        await store.close()


async def test_auto_keeps_a_data_dir_that_holds_local_mode_collections(tmp_path):
    local = await open_store(Settings(engine="qdrant-local", data_dir=tmp_path))
    assert choose_engine("auto", tmp_path) == "edge"  # a local store without collections
    await local.create_collection(CollectionSpec("old", 3, "cosine"))
    await local.close()
    assert choose_engine("auto", tmp_path) == "qdrant-local"
    (tmp_path / "edge").mkdir()  # once the embedded engine has been used, it stays chosen
    assert choose_engine("auto", tmp_path) == "edge"


async def test_a_qdrant_url_wins_and_must_answer(tmp_path, unused_tcp_port):
    settings = Settings(engine="edge", data_dir=tmp_path, qdrant_url=f"http://127.0.0.1:{unused_tcp_port}")
    with pytest.raises(ApiError) as e:
        await open_store(settings)
    assert e.value.code == grpc.StatusCode.UNAVAILABLE
    assert not (tmp_path / "edge").exists()
