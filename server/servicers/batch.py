"""BatchService: submit, follow and cancel durable bulk jobs.

Jobs belong to the tenant that submitted them: another tenant's job is NOT_FOUND. Submission
validates the job as a whole (operation, collection, model, size) before taking its items: an
upload's header is checked as soon as it arrives, so a wrong header fails the stream at once
rather than after every item was sent. Single items are checked when their chunk runs and
reported by id, so one bad item never sinks the rest.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import grpc

from citadel.batch.v1 import batch_service_pb2 as pb
from citadel.server import page_tokens
from citadel.server.auth.principal import ANONYMOUS
from citadel.server.chain import Call
from citadel.server.embeddings.fingerprint import Fingerprints
from citadel.server.errors import ApiError, invalid, not_found
from citadel.server.jobs.changes import progress
from citadel.server.jobs.queue import JobQueue
from citadel.server.jobs.record import OPERATION_NAMES, STATE_NAMES, Job
from citadel.server.jobs.submit import JobSubmitter
from citadel.server.servicers import validation as check
from citadel.server.store.base import VectorStore, generation_name
from citadel.server.tenancy import physical

MAX_INLINE_ITEMS = 100_000
MAX_UPLOADED_ITEMS = 10_000_000
MAX_KEY_LENGTH = 128
_ID_PAGE = 1000  # ids read per scroll when a re-embed lists its collection


class Models(Protocol):
    """The model router, as far as submission needs it: which model names are served."""

    pools: Mapping[str, object]

    def pool(self, model: str) -> Any:
        """The pool serving `model` (its `.name` is the resolved name)."""


@dataclass(frozen=True)
class _Settings:
    """A job's settings once validated: the operation's name, the stored collection name."""

    operation: str
    collection: str
    model: str = ""  # the job's model: the request's, or the bound collection's when it names none


class BatchServicer:
    def __init__(
        self,
        queue: JobQueue,
        store: VectorStore,
        jobs: JobSubmitter,
        models: Models,
        fingerprints: Fingerprints | None = None,  # None: re-embeds never reuse a kept generation
    ) -> None:
        self._queue = queue
        self._store = store
        self._jobs = jobs
        self._models = models
        self._fingerprints = fingerprints

    async def SubmitBatchJob(
        self, request: pb.SubmitBatchJobRequest, call: Call
    ) -> pb.SubmitBatchJobResponse:
        if len(request.items) > MAX_INLINE_ITEMS:
            raise invalid(
                "items",
                f"has {len(request.items)} items; inline jobs hold at most {MAX_INLINE_ITEMS}: stream larger ones with UploadBatchJob",
            )
        if not request.items and request.operation != pb.OPERATION_REEMBED:
            raise invalid("items", "must hold at least one item")
        checked = await self._check_settings(call, request, "")
        if checked.operation == "reembed":
            if request.items:
                raise invalid(
                    "items", "OPERATION_REEMBED takes no items: the collection's stored texts are its items"
                )
            job, existing = await self._submit_reembed(call, request, checked)
        else:
            job, existing = await self._submit(call, request, checked, request.items)
        return pb.SubmitBatchJobResponse(job=job.to_proto(), existing=existing)

    async def UploadBatchJob(
        self, requests: AsyncIterator[pb.UploadBatchJobRequest], call: Call
    ) -> pb.UploadBatchJobResponse:
        header = None
        checked = None
        items: list[pb.BatchItem] = []
        async for message in requests:
            part = message.WhichOneof("part")
            if header is None:
                if part != "header":
                    raise invalid("header", "the first message of the stream must hold the header")
                header = message.header
                # Before any item is taken: a job that cannot run fails the stream now.
                checked = await self._check_settings(call, header, "header.")
                if checked.operation == "reembed":
                    raise invalid(
                        "header.operation", "OPERATION_REEMBED takes no items: submit it with SubmitBatchJob"
                    )
            elif part == "header":
                raise invalid("header", "only the first message may hold the header")
            else:
                items.extend(message.items.items)
                if len(items) > MAX_UPLOADED_ITEMS:
                    raise invalid("items", f"a job holds at most {MAX_UPLOADED_ITEMS} items")
        if header is None or checked is None:
            raise invalid("header", "the stream was empty")
        job, existing = await self._submit(call, header, checked, items)
        return pb.UploadBatchJobResponse(job=job.to_proto(), existing=existing)

    async def _check_settings(
        self, call: Call, settings: pb.SubmitBatchJobRequest | pb.UploadBatchJobHeader, prefix: str
    ) -> _Settings:
        """The job's settings (the request, or an upload's header, whose fields are named
        `header.…`), checked before any item is looked at: operation, idempotency key, the
        collection (exists for this tenant) and, for embedding jobs, the model (served)."""
        op = OPERATION_NAMES.get(settings.operation)
        if op is None:
            raise invalid(
                f"{prefix}operation",
                "must be one of OPERATION_BULK_EMBED_UPSERT, OPERATION_BULK_UPSERT, OPERATION_EMBED, "
                "OPERATION_REEMBED",
            )
        if len(settings.idempotency_key) > MAX_KEY_LENGTH:
            raise invalid(f"{prefix}idempotency_key", f"is longer than {MAX_KEY_LENGTH} characters")
        if op != "bulk_upsert" and settings.model and settings.model not in self._models.pools:
            raise ApiError(
                grpc.StatusCode.NOT_FOUND,
                f"{prefix}model: {settings.model!r} is not served; known models: "
                f"{', '.join(sorted(self._models.pools))}",
            )
        if op == "embed":
            if settings.collection:
                raise invalid(
                    f"{prefix}collection",
                    "embed jobs keep their embeddings in the job: leave collection empty",
                )
            return _Settings(op, "", settings.model)
        name = check.collection_name(f"{prefix}collection", settings.collection)
        stored = physical(_tenant(call), name)
        spec = (await self._store.get_collection(stored)).spec  # NOT_FOUND now, not per chunk later
        model = settings.model
        if op == "reembed":
            if not model:
                raise invalid(
                    f"{prefix}model", "is required for OPERATION_REEMBED: the model to move the collection to"
                )
            if not spec.store_text:
                raise ApiError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"{prefix}collection: {name!r} keeps no text (store_text is false), so there is "
                    "nothing to embed again: write its vectors anew into a collection bound to the new model",
                )
            return _Settings(op, stored, self._models.pool(model).name)
        if op == "bulk_embed_upsert" and spec.embedding_model:
            if model and model != spec.embedding_model:
                raise ApiError(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"{prefix}model: collection {name!r} is bound to model {spec.embedding_model!r}; "
                    f"embeddings of {model!r} would be in another space: leave model empty or name "
                    f"{spec.embedding_model!r}",
                )
            model = spec.embedding_model
        return _Settings(op, stored, model)

    async def _submit(
        self,
        call: Call,
        settings: pb.SubmitBatchJobRequest | pb.UploadBatchJobHeader,
        checked: _Settings,
        items: Iterable[pb.BatchItem],
    ) -> tuple[Job, bool]:
        """Queues the job whose settings `_check_settings` accepted."""
        items = list(items)
        if not items:
            raise invalid("items", "must hold at least one item")
        job = Job(
            id=uuid.uuid4().hex,
            tenant=_tenant(call),
            collection=checked.collection,
            visible_collection=settings.collection,
            model=checked.model,
            operation=checked.operation,
            total=len(items),
            idempotency_key=settings.idempotency_key,
            normalize=settings.normalize,
            store_text=settings.store_text if settings.HasField("store_text") else True,
        )
        return await self._jobs.submit(job, items)

    async def _submit_reembed(
        self, call: Call, settings: pb.SubmitBatchJobRequest, checked: _Settings
    ) -> tuple[Job, bool]:
        """Queues a re-embed of every vector the collection holds now (jobs/reembed.py), into
        the generation kept for rollback when it is of the model asked for (only what changed
        since is embedded), else into a new one."""
        tenant = _tenant(call)
        for state in ("queued", "running"):
            for other in await self._queue.list(tenant, state, 1000, float("inf")):
                if other.operation == "reembed" and other.collection == checked.collection:
                    if settings.idempotency_key and other.idempotency_key == settings.idempotency_key:
                        return other, True
                    raise ApiError(
                        grpc.StatusCode.ALREADY_EXISTS,
                        f"collection: {settings.collection!r} is being re-embedded by job {other.id!r}: "
                        "wait for it to end, or cancel it",
                    )
        spec = (await self._store.get_collection(checked.collection)).spec
        job_id = uuid.uuid4().hex
        target = generation_name(checked.collection, job_id[:12])
        if spec.previous and await self._reusable(spec.previous, checked.model, call):
            target = spec.previous
        ids: list[str] = []
        token = ""
        while True:
            page = await self._store.scroll(checked.collection, None, _ID_PAGE, token, False, False)
            ids += (p.id for p in page.points)
            token = page.next_token
            if not token:
                break
        job = Job(
            id=job_id,
            tenant=tenant,
            collection=checked.collection,
            visible_collection=settings.collection,
            model=checked.model,
            operation="reembed",
            total=len(ids) + 1,  # and the switch
            idempotency_key=settings.idempotency_key,
            target=target,
        )
        return await self._jobs.submit_reembed(job, ids)

    async def _reusable(self, generation: str, model: str, call: Call) -> bool:
        """Whether the kept generation holds `model`'s embeddings as the model answers now: the
        same name is not enough, a model re-pointed since answers in another space."""
        kept = (await self._store.get_collection(generation)).spec
        if kept.embedding_model != model or self._fingerprints is None:
            return False
        why = await self._fingerprints.check(
            model, kept.fingerprint, deadline=call.deadline, tenant=_tenant(call)
        )
        return not why

    async def GetBatchJob(self, request: pb.GetBatchJobRequest, call: Call) -> pb.GetBatchJobResponse:
        return pb.GetBatchJobResponse(job=(await self._own(call, request.id)).to_proto())

    async def ListBatchJobs(self, request: pb.ListBatchJobsRequest, call: Call) -> pb.ListBatchJobsResponse:
        size = check.bounded("page_size", request.page_size, 100, 1000)
        state = ""
        if request.state:
            if request.state not in STATE_NAMES:
                raise invalid("state", f"{request.state} is not a JobState")
            state = STATE_NAMES[request.state]
        before = float("inf")
        if request.page_token:
            try:
                (before,) = struct.unpack(">d", bytes.fromhex(page_tokens.decode(request.page_token)))
            except (ValueError, struct.error):  # not hex, or not the 8 bytes of a double
                raise page_tokens.bad_token() from None
        jobs = await self._queue.list(_tenant(call), state, size + 1, before)
        page = jobs[:size]
        token = page_tokens.encode(struct.pack(">d", page[-1].created_at).hex()) if len(jobs) > size else ""
        return pb.ListBatchJobsResponse(
            jobs=[j.to_proto(with_embeddings=False) for j in page], next_page_token=token
        )

    async def CancelBatchJob(
        self, request: pb.CancelBatchJobRequest, call: Call
    ) -> pb.CancelBatchJobResponse:
        job = await self._own(call, request.id)
        cancelled = await self._queue.cancel(job.id)
        return pb.CancelBatchJobResponse(job=(cancelled or job).to_proto())

    async def WatchBatchJob(
        self, request: pb.WatchBatchJobRequest, call: Call
    ) -> AsyncIterator[pb.WatchBatchJobResponse]:
        job = await self._own(call, request.id)  # errors before the stream starts
        return self._watch(job)

    async def _watch(self, job: Job) -> AsyncIterator[pb.WatchBatchJobResponse]:
        """One message now and one per change, pushed by the queue when the job's record is
        written; ends at the job's final state (or when the caller goes away: cancelled)."""
        last = None
        while True:
            seen = progress(job)
            if seen != last:
                yield pb.WatchBatchJobResponse(job=job.to_proto(with_embeddings=job.terminal))
                last = seen
            if job.terminal:
                return
            job = await self._queue.next_change(job.id, seen) or job

    async def _own(self, call: Call, job_id: str) -> Job:
        if not job_id:
            raise invalid("id", "is required")
        job = await self._queue.get(job_id)
        if job is None or job.tenant != _tenant(call):
            raise not_found(f"job {job_id!r}")
        return job


def _tenant(call: Call) -> str:
    return call.state.get("principal", ANONYMOUS).tenant
