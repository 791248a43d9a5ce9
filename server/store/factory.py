"""Chooses and opens the vector store the settings ask for.

- QDRANT_URL set: qdrant-client against that Qdrant server or cluster, whatever the engine.
- engine "edge": qdrant-edge (Qdrant's engine in process) in <data_dir>/edge.
- engine "qdrant-local": qdrant-client local mode in <data_dir>/qdrant (fine for tiny data).
- engine "auto": edge when qdrant-edge imports, else qdrant-local; but a data dir that holds
  only a qdrant-local store keeps using it, so upgrading never hides existing collections.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from citadel.server.config import Settings
from citadel.server.errors import ApiError
from citadel.server.redaction import redact_url
from citadel.server.store.base import VectorStore
from citadel.server.store.qdrant_options import QdrantOptions
from citadel.server.store.qdrant_placement import PlacementPolicy

if TYPE_CHECKING:
    from citadel.server.store.qdrant import QdrantStore

log = logging.getLogger("citadel")


async def open_store(settings: Settings) -> VectorStore:
    if settings.qdrant_url:
        options = QdrantOptions.from_settings(settings)
        placement = PlacementPolicy.from_settings(settings, server=True)
        store = _qdrant_store().remote(
            settings.qdrant_url, settings.qdrant_api_key or None, options, placement
        )
        try:
            await store.check_reachable()
        except ApiError as e:
            await store.close()
            where = "store.qdrant_url" + (", store.qdrant_grpc_port" if options.prefer_grpc else "")
            raise ApiError(e.code, f"{e.message} (check {where})") from None
        except BaseException:
            await store.close()
            raise
        log.info("vector store: Qdrant at %s", redact_url(settings.qdrant_url))
        return store
    engine = choose_engine(settings.engine, settings.data_dir)
    log.info("vector store: %s in %s", engine, settings.data_dir)
    if engine == "edge":
        from citadel.server.store.edge import EdgeStore  # imports qdrant-edge only when chosen
        from citadel.server.store.edge_collection import HnswParams

        return EdgeStore(
            settings.data_dir / "edge",
            HnswParams(on_disk_vectors=settings.edge_on_disk_vectors),
            auto_indexes=settings.auto_indexes_per_collection,
        )
    return _qdrant_store().local(
        settings.data_dir / "qdrant", PlacementPolicy.from_settings(settings, server=False)
    )


def _qdrant_store() -> type[QdrantStore]:
    # Imported only when chosen: qdrant-client costs ~0.5 s of start-up the embedded engine skips.
    from citadel.server.store.qdrant import QdrantStore

    return QdrantStore


def store_in_use(settings: Settings) -> str:
    """What open_store opens for these settings, in words for status and logs: the engine the
    "auto" choice lands on, or the Qdrant server (URL redacted)."""
    if settings.qdrant_url:
        return f"Qdrant server at {redact_url(settings.qdrant_url)}"
    return f"{choose_engine(settings.engine, settings.data_dir)} engine in {settings.data_dir}"


def choose_engine(engine: str, data_dir: Path) -> str:
    if engine != "auto":
        return engine
    local_collections = data_dir / "qdrant" / "collection"
    if local_collections.is_dir() and any(local_collections.iterdir()) and not (data_dir / "edge").exists():
        return "qdrant-local"
    try:
        import qdrant_edge  # noqa: F401
    except ImportError:
        return "qdrant-local"
    return "edge"
