"""Integration patterns: how a model may be called.

- real-time: GenerateEmbedding answers synchronously.
- hybrid: synchronous when the request is `urgent` or holds at most the model's real-time
  budget of texts; otherwise queued as a batch job and answered with its id.
- bulk-only: synchronous calls are refused with FAILED_PRECONDITION naming
  BatchService.SubmitBatchJob; bulk work (batch jobs, priority "bulk") is served. Refusing
  rather than silently queueing keeps a synchronous caller from waiting on, or misreading,
  an answer that holds no embeddings.
"""

from __future__ import annotations

import grpc

from citadel.server.errors import ApiError
from citadel.server.models.catalog import BULK_ONLY, HYBRID, ModelSpec
from citadel.server.models.limiter import BULK

SYNC = "sync"
JOB = "job"


def decide(model: ModelSpec, count: int, urgent: bool, priority: str) -> str:
    """SYNC or JOB for a request of `count` texts; FAILED_PRECONDITION when neither is allowed."""
    if priority == BULK:
        return SYNC
    if model.pattern == BULK_ONLY:
        raise ApiError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"model: {model.name!r} is bulk-only and does not answer synchronously: submit the texts "
            "with citadel.batch.v1.BatchService.SubmitBatchJob (operation OPERATION_EMBED, or "
            "OPERATION_BULK_EMBED_UPSERT to store them)",
        )
    if model.pattern == HYBRID and not urgent and count > model.realtime_budget:
        return JOB
    return SYNC
