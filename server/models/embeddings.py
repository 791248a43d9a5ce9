"""GenerateEmbedding on the in-process local model (the embedded default).

The model loads on first use, off the event loop, so start-up stays fast; inference runs in
a worker thread so a batch never blocks other calls.
"""

from __future__ import annotations

import asyncio

import grpc
import numpy as np

from citadel.server.chain import Call
from citadel.server.errors import ApiError
from citadel.vector.v1 import vector_service_pb2 as pb

LOCAL_MODEL = "all-MiniLM-L6-v2"
LOCAL_DIMENSIONS = 384


class LocalEmbeddings:
    def __init__(self) -> None:
        self._model = None
        self._loading = asyncio.Lock()

    async def _embedder(self):
        if self._model is None:
            async with self._loading:
                if self._model is None:
                    from citadel.server.models.local import LocalEmbedder

                    self._model = await asyncio.to_thread(LocalEmbedder)
        return self._model

    async def embed(
        self, model: str, texts: list[str], normalize: bool, call: Call, priority: str = "realtime"
    ) -> tuple[str, np.ndarray]:
        if model not in ("", LOCAL_MODEL):
            raise ApiError(
                grpc.StatusCode.NOT_FOUND, f"model: {model!r} is not served; known: {LOCAL_MODEL!r}"
            )
        embedder = await self._embedder()
        vectors = await asyncio.to_thread(embedder.embed, texts)
        if normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.maximum(norms, 1e-12)
        return LOCAL_MODEL, vectors

    def list_models(self) -> pb.ListModelsResponse:
        backend = pb.ModelBackend(
            id="local",
            provider="local",
            weight=1,
            max_concurrency=1,
            healthy=True,
            circuit=pb.CIRCUIT_STATE_CLOSED,
            consistent=True,
        )
        model = pb.Model(
            name=LOCAL_MODEL,
            pattern=pb.INTEGRATION_PATTERN_REALTIME,
            dimensions=LOCAL_DIMENSIONS,
            strategy="p2c",
            backends=[backend],
        )
        return pb.ListModelsResponse(models=[model], default_model=LOCAL_MODEL)
