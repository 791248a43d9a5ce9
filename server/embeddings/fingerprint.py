"""Model fingerprints: does a model still answer in the space a collection was embedded in?

A bound collection keeps its model's vectors for PROBE_TEXTS from when it was created. Later
the same texts are embedded again (through the embedding service, like any other text) and
compared text by text with the replica guard's test (models/replicas.py: same dimension, same
normalisation, cosine ≥ the catalog's replica_min_cosine). Vectors, not a hash: backends of
one model (int8 and float builds, other runtimes) differ in the last bits, different models
are far apart. A model's current answer is kept for REFRESH_SECONDS per resolved identity, so
a text search pays for the probes at most once per interval, and a model re-pointed to other
backends (a new identity) is probed afresh at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import grpc
import numpy as np

from citadel.server.embeddings.service import EmbeddingService
from citadel.server.errors import ApiError
from citadel.server.models import replicas

# Varied on purpose: one sentence can land close in two models' spaces by chance, three
# unrelated ones together do not. Never edit them: stored fingerprints are their vectors.
PROBE_TEXTS = (
    "Citadel fingerprint probe: the quick brown fox jumps over the lazy dog.",
    "Fresh sourdough bread needs flour, water, salt and a slow overnight rise.",
    "The central bank raised interest rates to slow inflation in the third quarter.",
)
REFRESH_SECONDS = 10.0

Fingerprint = tuple[tuple[float, ...], ...]


def mismatch(stored: Fingerprint, current: np.ndarray, min_cosine: float) -> str:
    """Why the model's `current` probe vectors are not the space of `stored`, or ''."""
    if len(stored) != len(current):  # recorded with other probe texts: nothing to compare
        return ""
    for i, (was, now) in enumerate(zip(stored, current, strict=True)):
        why = replicas.disagreement(
            np.asarray(now, dtype=np.float32), np.asarray(was, dtype=np.float32), min_cosine
        )
        if why:
            return f"probe text {i + 1}: {why}"
    return ""


class Fingerprints:
    def __init__(self, embeddings: EmbeddingService, min_cosine: float) -> None:
        self._embeddings = embeddings
        self.min_cosine = min_cosine  # models.resilience.replica_min_cosine
        # identity -> (when taken, vectors); one probe in flight per identity
        self._taken: dict[str, tuple[float, np.ndarray]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def take(self, model: str, *, deadline: float | None, tenant: str = "") -> tuple[str, np.ndarray]:
        """`model`'s resolved name and its vectors for PROBE_TEXTS now (or within REFRESH_SECONDS)."""
        identity = self._embeddings.identity(model)
        lock = self._locks.setdefault(identity, asyncio.Lock())
        async with lock:
            cached = self._taken.get(identity)
            if cached is not None and time.monotonic() - cached[0] < REFRESH_SECONDS:
                return self._embeddings.resolve(model), cached[1]
            embedded = await self._embeddings.embed(
                model, PROBE_TEXTS, deadline=deadline, tenant=tenant, field="embedding_model"
            )
            self._taken[identity] = (time.monotonic(), embedded.vectors)
            return embedded.model, embedded.vectors

    async def check(
        self, model: str, stored: Fingerprint, *, deadline: float | None, tenant: str = ""
    ) -> str:
        """'' when `model` still answers like `stored`, else why not."""
        _, current = await self.take(model, deadline=deadline, tenant=tenant)
        return mismatch(stored, current, self.min_cosine)


def space_error(collection: str, model: str, why: str) -> ApiError:
    """The refusal of text work on a collection whose model now answers in another space."""
    return ApiError(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"collection {collection!r} was embedded with model {model!r}, whose backends now "
        f"answer in another embedding space ({why}): its stored vectors no longer compare with "
        f"new embeddings of {model!r}. Re-embed the collection with a batch job "
        f"(BatchService.SubmitBatchJob, operation OPERATION_REEMBED), or point {model!r} back at "
        "the model it was made with",
    )


def as_fingerprint(vectors: Sequence[Sequence[float]]) -> Fingerprint:
    return tuple(tuple(float(x) for x in row) for row in vectors)
