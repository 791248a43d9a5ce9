"""Re-embedding a collection into a new generation of it, then switching its name over.

The job's chunks hold the ids the collection had when the job was submitted. A chunk copies
its ids: reads each point from the collection as it is now, embeds its stored text with the
job's model and writes it into the job's generation (`Job.target`) with its original write
time. A point whose write time in the generation already equals the collection's is in sync
and skipped: a retried or resumed chunk, or a rollback into the kept previous generation,
embeds only what changed.

The job's last chunk, the switch, runs once the others are done:
1. Catch up: compare the collection with the generation page by page, copying what was
   written meanwhile and deleting what was deleted, until a pass finds little left.
2. Switch: `store.switch` points the name at the generation; every read and write that
   resolves the name after it uses the new embeddings.
3. Settle: wait out writes that resolved the old generation just before (a servicer's
   cached spec, a write in flight), then copy from it whatever was written to it since the
   last catch-up pass, and delete what was deleted from it since.
Searches resolve the name once and embed with that generation's model (CollectionSpec.home),
so each is answered wholly by one generation. Every step is safe to run again, so a job
whose gateway was killed resumes from its chunks' leases to the same end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence

import grpc

from citadel.server.embeddings.fingerprint import Fingerprints, as_fingerprint, space_error
from citadel.server.embeddings.service import BULK, EmbeddingService
from citadel.server.errors import ApiError
from citadel.server.jobs.record import ChunkResult, ItemFailure, Job
from citadel.server.store.base import CollectionSpec, Point, VectorStore

log = logging.getLogger("citadel.jobs")

PAGE = 512  # points compared per catch-up step
# A catch-up pass that finds at most this many changes is followed by the switch.
QUIET = 64
MAX_PASSES = 5
# For a generation switched without a catch-up time (by an older gateway): points written to
# the old generation this long before the switch count as possibly not carried over.
RESUMED_WINDOW_SECONDS = 120.0
NOT_STORED = (
    "text: not stored with this vector (it was written with its embedding only, or while "
    "the collection kept no text), so it cannot be embedded again: not carried over"
)


class Reembedder:
    def __init__(
        self,
        store: VectorStore,
        embeddings: EmbeddingService,
        fingerprints: Fingerprints,
        settle_seconds: float,  # jobs.reembed_settle_seconds
    ) -> None:
        self._store = store
        self._embeddings = embeddings
        self._fingerprints = fingerprints
        self._settle = settle_seconds

    async def copy(self, job: Job, ids: Sequence[str], deadline: float) -> ChunkResult:
        """Carries `ids` from the collection into the job's generation."""
        target = await self._target(job, deadline)
        if (await self._store.get_collection(job.collection)).spec.home == job.target:
            return ChunkResult(len(ids), [])  # switched already: the generation is the collection
        now = {p.id: p for p in await self._store.retrieve(job.collection, ids)}
        there = {p.id: p.created_at for p in await self._store.retrieve(job.target, ids)}
        gone = [i for i in there if i not in now]  # deleted since: the generation follows
        if gone:
            await self._store.delete_ids(job.target, gone)
        failures = await self._carry(
            job, target, [p for p in now.values() if there.get(p.id) != p.created_at], deadline
        )
        return ChunkResult(len(ids) - len(failures), failures)

    async def switch(self, job: Job, deadline: float) -> ChunkResult:
        """Catches up, switches the name, settles; the job's last step."""
        target = await self._target(job, deadline)
        spec = (await self._store.get_collection(job.collection)).spec
        failures: list[ItemFailure] = []
        if spec.home != job.target:
            caught_up_at = time.time()
            for _ in range(MAX_PASSES):
                caught_up_at = time.time()
                changed, missed = await self._catch_up(job, target, job.collection, deadline, mirror=True)
                failures += missed
                if changed <= QUIET:
                    break
            await self._store.switch(job.collection, job.target, caught_up_at)
            log.info(
                "job %s: collection %r switched to its %s embeddings (%r)",
                job.id,
                job.visible_collection,
                target.embedding_model,
                job.target,
            )
            spec = (await self._store.get_collection(job.collection)).spec
        else:  # resumed after the switch: it recorded when the last catch-up pass began
            caught_up_at = spec.caught_up_at or spec.switched_at - RESUMED_WINDOW_SECONDS
        if spec.previous:
            await asyncio.sleep(max(0.0, spec.switched_at + self._settle - time.time()))
            _, missed = await self._catch_up(
                job,
                target,
                spec.previous,
                deadline,
                mirror=False,
                since=caught_up_at,
                before=spec.switched_at,
            )
            failures += missed
        return ChunkResult(1, _first_per_item(failures))

    async def abandon(self, job: Job) -> None:
        """After a cancel: deletes the generation being built, unless it is the collection's
        current or kept one (a rollback's target)."""
        try:
            spec = (await self._store.get_collection(job.collection)).spec
        except ApiError as e:
            if e.code == grpc.StatusCode.NOT_FOUND:
                return  # the collection was deleted, and its generations with it
            raise
        if job.target in (spec.home, spec.previous):
            return
        try:
            await self._store.delete_collection(job.target)
        except ApiError as e:
            if e.code != grpc.StatusCode.NOT_FOUND:
                raise

    # -- steps ----------------------------------------------------------------------------

    async def _target(self, job: Job, deadline: float) -> CollectionSpec:
        """The job's generation, created on first use with the model's dimension and
        fingerprint; refused while the model answers in another space than it was made in."""
        try:
            target = (await self._store.get_collection(job.target)).spec
        except ApiError as e:
            if e.code != grpc.StatusCode.NOT_FOUND:
                raise
            source = (await self._store.get_collection(job.collection)).spec
            model, probes = await self._fingerprints.take(job.model, deadline=deadline, tenant=job.tenant)
            target = dataclasses.replace(
                source,
                name=job.target,
                dimension=int(probes.shape[1]),
                embedding_model=model,
                fingerprint=as_fingerprint(probes),
                keywords=source.store_text,  # a re-embed also builds keyword vectors
                physical="",
                previous="",
                switched_at=0.0,
                caught_up_at=0.0,
            )
            try:
                await self._store.create_collection(target)
            except ApiError as e:
                if e.code != grpc.StatusCode.ALREADY_EXISTS:  # another chunk made it first
                    raise
            return (await self._store.get_collection(job.target)).spec
        why = await self._fingerprints.check(
            target.embedding_model, target.fingerprint, deadline=deadline, tenant=job.tenant
        )
        if why:
            raise space_error(job.visible_collection, target.embedding_model, why)
        return target

    async def _catch_up(
        self,
        job: Job,
        target: CollectionSpec,
        source: str,
        deadline: float,
        *,
        mirror: bool,
        since: float = 0.0,
        before: float = float("inf"),
    ) -> tuple[int, list[ItemFailure]]:
        """Makes the generation agree with `source`; returns (points changed, failures).

        mirror (before the switch): the generation gets every difference. Otherwise (the old
        generation after the switch, while the generation takes writes of its own): only
        points written to `source` since `since` that the generation lacks or holds older,
        and deletions of points the generation got before the switch (`before`)."""
        changed, failures, token = 0, [], ""
        while True:
            page = await self._store.scroll(source, None, PAGE, token, False, False)
            # Textless points cannot be carried: those the job's chunks met are reported
            # there; those written since the job was submitted are reported here.
            textless = [p.id for p in page.points if p.text is None and p.created_at >= job.created_at]
            failures += [ItemFailure(i, NOT_STORED) for i in textless]
            written = {
                p.id: p.created_at
                for p in page.points
                if p.text is not None and (mirror or p.created_at >= since)
            }
            there = {p.id: p.created_at for p in await self._store.retrieve(job.target, list(written))}
            if mirror:
                stale = [i for i, at in written.items() if there.get(i) != at]
            else:  # the generation's own newer write wins
                stale = [i for i, at in written.items() if there.get(i, -1.0) < at]
            if stale:
                failures += await self._carry(
                    job, target, await self._store.retrieve(source, stale), deadline
                )
                changed += len(stale)
            token = page.next_token
            if not token:
                break
        while True:  # what the generation holds that `source` no longer does
            page = await self._store.scroll(job.target, None, PAGE, token, False, False)
            candidates = [p.id for p in page.points if p.created_at < before]
            kept = {p.id for p in await self._store.retrieve(source, candidates)}
            gone = [i for i in candidates if i not in kept]
            if gone:
                changed += await self._store.delete_ids(job.target, gone)
            token = page.next_token
            if not token:
                break
        return changed, failures

    async def _carry(
        self, job: Job, target: CollectionSpec, points: list[Point], deadline: float
    ) -> list[ItemFailure]:
        """Embeds the stored texts of `points` with the generation's model and writes them
        there with their original write times; those without text fail."""
        failures = [ItemFailure(p.id, NOT_STORED) for p in points if p.text is None]
        texts = [p for p in points if p.text is not None]
        if not texts:
            return failures
        embedded = await self._embeddings.embed(
            target.embedding_model,
            [p.text for p in texts],
            deadline=deadline,
            tenant=job.tenant,
            priority=BULK,
        )
        if embedded.vectors.shape[1] != target.dimension:
            why = f"it now makes {embedded.vectors.shape[1]}-dimensional embeddings"
            raise space_error(job.visible_collection, target.embedding_model, why)
        now = time.time()
        await self._store.upsert(
            job.target,
            [
                Point(
                    id=p.id,
                    vector=row.tolist(),
                    metadata=p.metadata,
                    created_at=p.created_at,  # the write it carries, so the next pass sees it in sync
                    text=p.text,
                    embedding_model=target.embedding_model,
                    embedded_at=now,
                )
                for p, row in zip(texts, embedded.vectors, strict=True)
            ],
        )
        return failures


def _first_per_item(failures: list[ItemFailure]) -> list[ItemFailure]:
    """One failure per item id: catch-up passes may meet the same textless point twice."""
    return list({f.item_id: f for f in reversed(failures)}.values())[::-1]
