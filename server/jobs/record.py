"""A batch job's record and its chunks of work, independent of the queue that holds them."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields

from citadel.batch.v1 import batch_service_pb2 as pb
from citadel.server.servicers.convert import timestamp

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "partially_failed"})
STATE_ENUMS = {
    "queued": pb.JOB_STATE_QUEUED,
    "running": pb.JOB_STATE_RUNNING,
    "succeeded": pb.JOB_STATE_SUCCEEDED,
    "failed": pb.JOB_STATE_FAILED,
    "cancelled": pb.JOB_STATE_CANCELLED,
    "partially_failed": pb.JOB_STATE_PARTIALLY_FAILED,
}
STATE_NAMES = {v: k for k, v in STATE_ENUMS.items()}
OPERATION_NAMES = {
    pb.OPERATION_BULK_EMBED_UPSERT: "bulk_embed_upsert",
    pb.OPERATION_BULK_UPSERT: "bulk_upsert",
    pb.OPERATION_EMBED: "embed",
    pb.OPERATION_REEMBED: "reembed",
}
OPERATION_ENUMS = {v: k for k, v in OPERATION_NAMES.items()}
MAX_REPORTED_ERRORS = 100


@dataclass
class ItemFailure:
    item_id: str
    message: str
    attempts: int = 1
    dead_lettered: bool = False


@dataclass
class Job:
    id: str
    tenant: str
    collection: str  # stored (tenant-prefixed) name; empty for embed jobs
    visible_collection: str  # the name the caller used
    model: str
    operation: str  # bulk_embed_upsert | bulk_upsert | embed | reembed
    total: int
    idempotency_key: str = ""
    normalize: bool = False
    store_text: bool = True  # keep items' texts with their vectors (if the collection does)
    target: str = ""  # reembed: the generation being built (stored name, store/base.py)
    state: str = "queued"
    done: int = 0
    failed: int = 0
    created_at: float = field(default_factory=time.time)
    started_at: float = 0.0
    finished_at: float = 0.0
    errors: list[ItemFailure] = field(default_factory=list)
    embeddings: list[tuple[str, list[float]]] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def to_proto(self, with_embeddings: bool = True) -> pb.BatchJob:
        now = time.time()
        end = self.finished_at or now
        elapsed = end - self.started_at if self.started_at else 0.0
        processed = self.done + self.failed
        rate = processed / elapsed if elapsed > 0 else 0.0
        remaining = self.total - processed
        job = pb.BatchJob(
            id=self.id,
            collection=self.visible_collection,
            model=self.model,
            operation=OPERATION_ENUMS[self.operation],
            state=STATE_ENUMS[self.state],
            total=self.total,
            done=self.done,
            failed=self.failed,
            items_per_second=rate,
            eta_seconds=remaining / rate if rate > 0 and not self.terminal else 0.0,
            created_at=timestamp(self.created_at),
            idempotency_key=self.idempotency_key,
            normalize=self.normalize,
            store_text=self.store_text,
            errors=[
                pb.ItemError(
                    item_id=e.item_id, message=e.message, attempts=e.attempts, dead_lettered=e.dead_lettered
                )
                for e in self.errors[:MAX_REPORTED_ERRORS]
            ],
        )
        if self.started_at:
            job.started_at.CopyFrom(timestamp(self.started_at))
        if self.finished_at:
            job.finished_at.CopyFrom(timestamp(self.finished_at))
        if with_embeddings:
            for item_id, values in self.embeddings:
                job.embeddings.add(item_id=item_id, values=values)
        return job


# The scalar fields a queue stores for a job (errors and embeddings are kept apart).
JOB_FIELDS = tuple(f.name for f in fields(Job) if f.name not in ("errors", "embeddings"))
_CONVERT = {"str": str, "int": int, "float": float, "bool": lambda v: v in (True, 1, "1", "True", "true")}


def job_from_fields(values: Mapping[str, object]) -> Job:
    """A job from stored scalars, whatever their storage type (SQLite values, Redis strings)."""
    types = {f.name: f.type for f in fields(Job)}
    return Job(**{name: _CONVERT[types[name]](values[name]) for name in JOB_FIELDS if name in values})


# A re-embed's last step, the switch (jobs/reembed.py), is a chunk of this one item: no
# vector has an empty id, so it never meets a copied one.
SWITCH = pb.BatchItem(id="")


def is_switch(items: Sequence[pb.BatchItem]) -> bool:
    return len(items) == 1 and items[0].id == ""


@dataclass
class Chunk:
    """A slice of a job's items, leased by one worker at a time."""

    job_id: str
    index: int
    items: pb.BatchItemList
    attempts: int
    token: str  # the queue's handle for acknowledging this lease


@dataclass
class ChunkResult:
    done: int
    failures: list[ItemFailure]
    embeddings: list[tuple[str, list[float]]] = field(default_factory=list)
