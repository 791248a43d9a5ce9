"""The embedding service: how a text becomes a vector, for every caller.

GenerateEmbedding, SearchVectors' query_text and the batch workers call it (and so will
anything else that embeds text); nothing else knows the steps, in order:
1. validation and caps: no blank text, at most limits.embed_chars_per_text characters each,
   and, in real time, at most limits.embed_texts_per_call texts;
2. the model name resolved (NOT_FOUND when not served) and its integration pattern applied:
   a hybrid model's over-budget, non-urgent GenerateEmbedding is queued as an `embed` batch
   job (answered with its id), a bulk-only model refuses real-time work;
3. the per-text cache, when the caller uses it, with single flight (text_cache.py);
4. the model router, within the caller's deadline (a time.monotonic() value, or None for the
   catalog's request timeout), at the caller's priority.
Deadlines and tenants travel as values: nothing here knows the interceptor chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
import numpy as np

from citadel.server.embeddings.text_cache import KeyParts, TextCache
from citadel.server.errors import ApiError
from citadel.server.jobs.submit import JobSubmitter
from citadel.server.models import patterns
from citadel.server.models.limiter import BULK, REALTIME
from citadel.server.models.router import ModelPool, ModelRouter
from citadel.server.servicers import validation as check
from citadel.vector.v1 import vector_service_pb2 as pb

__all__ = ["BULK", "REALTIME", "CacheUse", "Embedded", "EmbeddingService", "Queued"]


@dataclass(frozen=True)
class CacheUse:
    """How one call uses the per-text cache."""

    method: str  # the caller's gRPC path: its outcomes are counted under it (GetCacheStats)
    bypass: bool = False  # asked not to use it (Cache-Control: no-cache)


@dataclass(frozen=True)
class Embedded:
    model: str  # the name the request's model resolved to
    identity: str  # what that name resolves to (backends, dimension): ModelRouter.identity
    vectors: np.ndarray  # float32, one row per text, in order
    cache: str = ""  # the per-text cache's outcome (a cache.status constant); "" when not used


@dataclass(frozen=True)
class Queued:
    """A hybrid model's over-budget request, queued as an `embed` batch job."""

    model: str
    job_id: str


class EmbeddingService:
    def __init__(
        self,
        router: ModelRouter,
        limits: check.TextLimits,
        jobs: JobSubmitter | None = None,
        cache: TextCache | None = None,
    ) -> None:
        self._router = router
        self._limits = limits  # limits.embed_texts_per_call / embed_chars_per_text
        self._jobs = jobs  # None: no batch jobs here, so nothing can be queued
        self._cache = cache  # None: cache.enabled = false

    def identity(self, model: str) -> str:
        """What `model` resolves to now; cached answers that depend on a model key on it."""
        return self._router.identity(model)

    @property
    def texts_per_call(self) -> int:
        """limits.embed_texts_per_call: most texts one real-time call embeds."""
        return self._limits.texts_per_call

    def resolve(self, model: str) -> str:
        """The name `model` resolves to ("" is the default model); NOT_FOUND when not served."""
        return self._router.pool(model).name

    def list_models(self) -> pb.ListModelsResponse:
        """Every model with its pattern and the live state of its backends."""
        return self._router.list_models()

    def check_text(self, field: str, text: str) -> None:
        """One text as every caller's text must be: not blank, within
        limits.embed_chars_per_text. INVALID_ARGUMENT naming `field` otherwise."""
        check.embed_text(field, text, self._limits)

    async def embed(
        self,
        model: str,
        texts: Sequence[str],
        *,
        normalize: bool = False,
        deadline: float | None = None,
        tenant: str = "",
        priority: str = REALTIME,
        field: str = "texts",
        cache: CacheUse | None = None,
    ) -> Embedded:
        """One vector per text, in order. `field` names the texts in errors: a repeated field
        ("texts": `texts[3]`) or a single-text one ("query_text"). Without `cache` the
        per-text cache is not consulted (a search by text is cached as a whole answer;
        batch work would only churn it)."""
        self._check(field, texts, priority)
        return await self._embed(
            self._router.pool(model), texts, normalize, deadline, tenant, priority, field, cache
        )

    async def generate(
        self,
        model: str,
        texts: Sequence[str],
        *,
        normalize: bool = False,
        urgent: bool = False,
        deadline: float | None = None,
        tenant: str = "",
        field: str = "texts",
        cache: CacheUse | None = None,
    ) -> Embedded | Queued:
        """GenerateEmbedding under the model's integration pattern: the vectors, or the id of
        the `embed` job (owned by `tenant`) that a hybrid model queued them as."""
        self._check(field, texts, REALTIME)
        pool = self._router.pool(model)
        if patterns.decide(pool.spec, len(texts), urgent, REALTIME) == patterns.JOB:
            if self._jobs is None:
                raise ApiError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"{field}: model {pool.name!r} queues requests of more than "
                    f"{pool.spec.realtime_budget} texts as batch jobs, and batch jobs are not "
                    "available on this gateway: send fewer texts, or set urgent",
                )
            job = await self._jobs.submit_embed(tenant, pool.name, texts, normalize)
            return Queued(pool.name, job.id)
        return await self._embed(pool, texts, normalize, deadline, tenant, REALTIME, field, cache)

    def _check(self, field: str, texts: Sequence[str], priority: str) -> None:
        if field != "texts":  # a single-text field (text, query_text)
            for text in texts:
                self.check_text(field, text)
        elif priority == REALTIME:
            check.embed_texts(field, texts, self._limits)
        else:  # batch work: chunks of jobs.chunk_size, whatever limits.embed_texts_per_call
            for i, text in enumerate(texts):
                self.check_text(f"{field}[{i}]", text)

    async def _embed(
        self,
        pool: ModelPool,
        texts: Sequence[str],
        normalize: bool,
        deadline: float | None,
        tenant: str,
        priority: str,
        field: str,
        cache: CacheUse | None,
    ) -> Embedded:
        async def compute(some: list[str]) -> np.ndarray:
            _, vectors = await self._router.embed(pool.name, some, normalize, deadline, priority, field)
            return vectors

        identity = pool.identity()  # the key: what the name resolved to when it was asked
        if cache is None or self._cache is None or not texts:
            vectors, outcome = await compute(list(texts)), ""
        elif cache.bypass:
            vectors, outcome = await compute(list(texts)), self._cache.bypassed(cache.method)
        else:
            parts = KeyParts(tenant, identity, normalize)
            vectors, outcome = await self._cache.embed(texts, parts, cache.method, compute)
        return Embedded(pool.name, pool.identity(), vectors, outcome)
