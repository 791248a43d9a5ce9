"""The in-process local model (all-MiniLM-L6-v2, 384-d) as a provider: offline, the default.

One LocalEmbedder serves every model and backend that names the local provider; it loads on
first use in a worker thread (start-up stays fast) and each batch runs in a worker thread, so
inference never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from citadel.server.models.providers.base import BackendError

_lock = threading.Lock()
_shared = None


def shared_embedder():
    """The process's one LocalEmbedder, loaded on first call (blocking: call it in a thread)."""
    global _shared
    with _lock:
        if _shared is None:
            from citadel.server.models.local import LocalEmbedder

            _shared = LocalEmbedder()
        return _shared


class LocalProvider:
    probe_key = "local"  # every LocalProvider runs the process's one shared embedder

    async def embed(self, texts: list[str], timeout: float) -> np.ndarray:
        try:
            async with asyncio.timeout(timeout):
                embedder = await asyncio.to_thread(shared_embedder)
                return await asyncio.to_thread(embedder.embed, texts)
        except TimeoutError:
            # The thread finishes on its own; the caller stops waiting for it.
            raise BackendError(f"local model: no answer within {timeout:.3g} s") from None

    async def close(self) -> None:
        return None
