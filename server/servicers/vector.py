"""VectorService: validates every request fully, then calls the store.

Nothing here knows which protocol a call came from; the chain hands in the request message
and the Call. A request that is invalid anywhere writes nothing. Texts become vectors in the
embedding service (embeddings/service.py), given the call's deadline and tenant as values.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

import grpc
import numpy as np

from citadel.options.v1 import options_pb2
from citadel.server import page_tokens
from citadel.server.auth.principal import ANONYMOUS
from citadel.server.cache import status
from citadel.server.chain import Call
from citadel.server.embeddings.fingerprint import Fingerprints, as_fingerprint, space_error
from citadel.server.embeddings.service import CacheUse, EmbeddingService, Queued
from citadel.server.errors import ApiError, invalid, not_found
from citadel.server.servicers import collection_layout, query_plan
from citadel.server.servicers import validation as check
from citadel.server.servicers.convert import (
    DISTANCE_NAMES,
    FIELD_TYPE_NAMES,
    add_hits,
    collection_message,
    field_value,
    struct_to_dict,
    vector_message,
)
from citadel.server.store.base import CollectionInfo, CollectionSpec, Point, SearchQuery, VectorStore
from citadel.server.tenancy import physical, visible
from citadel.vector.v1 import resources_pb2
from citadel.vector.v1 import vector_service_pb2 as pb

MAX_LIMIT, MAX_OFFSET = check.MAX_LIMIT, check.MAX_OFFSET
MAX_DESCRIPTION = 4096
_CHECK_SLICE = 4096  # vectors checked between two turns of the event loop (~5-10 ms)
# Collection specs change only when a collection is recreated or re-embedded, so a
# short-lived copy saves a store round trip per search; the TTL bounds how stale it gets.
SPEC_TTL_SECONDS = 2.0
# A write slower than this looks again, before storing, at which generation its collection
# resolves to. With the spec's TTL this bounds how long after a re-embed's switch a write
# can still reach the old generation: jobs.reembed_settle_seconds must exceed the sum.
WRITE_RECHECK_SECONDS = 1.0


class VectorServicer:
    def __init__(
        self,
        store: VectorStore,
        embeddings: EmbeddingService | None,  # None: a servicer that is never sent texts
        max_upsert_vectors: int = 100_000,
        # The models' probe vectors, shared with the batch workers (one probe per model).
        fingerprints: Fingerprints | None = None,
    ) -> None:
        self._store = store
        self._embeddings = embeddings
        self._fingerprints = fingerprints
        self._max_upsert_vectors = max_upsert_vectors  # limits.vectors_per_upsert
        # (tenant, collection name as the caller gave it) -> (when read, spec)
        self._specs: dict[tuple[str, str], tuple[float, CollectionSpec]] = {}

    # -- collections ----------------------------------------------------------------------

    async def CreateCollection(
        self, request: pb.CreateCollectionRequest, call: Call
    ) -> pb.CreateCollectionResponse:
        c = request.collection
        name = self._physical(call, "collection.name", c.name)
        if not 1 <= c.dimension <= check.MAX_DIMENSION and not (c.embedding_model and c.dimension == 0):
            raise invalid(
                "collection.dimension", f"must be between 1 and {check.MAX_DIMENSION}, got {c.dimension}"
            )
        if c.distance not in DISTANCE_NAMES:
            raise invalid(
                "collection.distance", "must be one of DISTANCE_COSINE, DISTANCE_DOT, DISTANCE_EUCLID"
            )
        if len(c.description) > MAX_DESCRIPTION:
            raise invalid("collection.description", f"is longer than {MAX_DESCRIPTION} characters")
        seen: set[str] = set()
        for i, f in enumerate(c.indexed_fields):
            where = f"collection.indexed_fields[{i}]"
            check.metadata_path(f"{where}.key", f.key)
            if f.key in seen:
                raise invalid(f"{where}.key", f"{f.key!r} is listed twice")
            seen.add(f.key)
            if f.type not in FIELD_TYPE_NAMES:
                raise invalid(
                    f"{where}.type", "must be one of FIELD_TYPE_KEYWORD, _INTEGER, _FLOAT, _BOOL, _TEXT"
                )
        spec = CollectionSpec(
            name=name,
            dimension=c.dimension,
            distance=DISTANCE_NAMES[c.distance],
            description=c.description,
            indexed_fields=tuple((f.key, FIELD_TYPE_NAMES[f.type]) for f in c.indexed_fields),
            created_at=time.time(),
            store_text=c.store_text if c.HasField("store_text") else True,
            layout=collection_layout.from_message("collection.layout", c.layout),
        )
        spec = dataclasses.replace(spec, keywords=spec.store_text)  # BM25 over the texts it keeps
        state = resources_pb2.FINGERPRINT_STATE_UNSPECIFIED
        if c.embedding_model:  # the request is valid: now spend the model's probe call
            spec = await self._bound(spec, c.embedding_model, call)
            state = resources_pb2.FINGERPRINT_STATE_MATCHES
        await self._store.create_collection(spec)
        self._specs.pop((_tenant(call), c.name), None)
        return pb.CreateCollectionResponse(collection=collection_message(spec, c.name, state))

    async def GetCollection(self, request: pb.GetCollectionRequest, call: Call) -> pb.GetCollectionResponse:
        name = self._physical(call, "name", request.name)
        info = await self._store.get_collection(name)
        state, detail = await self._fingerprint_state(info.spec, call)
        return pb.GetCollectionResponse(
            collection=collection_message(
                info, request.name, state, detail, await self._rollback_model(info.spec)
            )
        )

    async def _collection_info(self, spec: CollectionSpec) -> CollectionInfo | CollectionSpec:
        """The store's own view of a listed collection (counts, index progress), as
        GetCollection shows it; just the spec when it was deleted since it was listed."""
        try:
            return await self._store.get_collection(spec.name)
        except ApiError as e:
            if e.code != grpc.StatusCode.NOT_FOUND:
                raise
            return spec

    async def ListCollections(
        self, request: pb.ListCollectionsRequest, call: Call
    ) -> pb.ListCollectionsResponse:
        size = check.bounded("page_size", request.page_size, 100, MAX_LIMIT)
        after = ""
        if request.page_token:
            after = page_tokens.decode(request.page_token)
            if not check.valid_collection_name(after):
                raise page_tokens.bad_token()
        tenant = _tenant(call)
        # A tenant's physical names share its prefix, so theirs sort as the visible ones do.
        listed = await self._store.list_collections(
            tenant, after=physical(tenant, after) if after else "", limit=size + 1
        )
        mine = ((visible(tenant, s.name), s) for s in listed)
        named = [(n, s) for n, s in mine if n is not None and n > after]
        page = named[:size]
        collections = []
        for n, s in page:
            state, detail = await self._fingerprint_state(s, call)
            info = await self._collection_info(s)
            collections.append(collection_message(info, n, state, detail, await self._rollback_model(s)))
        return pb.ListCollectionsResponse(
            collections=collections,
            next_page_token=page_tokens.encode(page[-1][0]) if len(named) > size else "",
        )

    async def DeleteCollection(
        self, request: pb.DeleteCollectionRequest, call: Call
    ) -> pb.DeleteCollectionResponse:
        name = self._physical(call, "name", request.name)
        await self._store.delete_collection(name)
        self._specs.pop((_tenant(call), request.name), None)
        return pb.DeleteCollectionResponse(name=request.name)

    # -- vectors --------------------------------------------------------------------------

    async def InsertVector(self, request: pb.InsertVectorRequest, call: Call) -> pb.InsertVectorResponse:
        started = time.monotonic()
        spec = await self._spec(call, "collection", request.collection)
        if not request.HasField("vector"):
            raise invalid("vector", "is required")
        point = self._point("vector", request.vector, spec)
        await self._embed_texts([point], lambda i: "vector", spec, request.collection, call)
        await self._require_home(call, request.collection, spec, started)
        await self._store.upsert(spec.home, [point])
        stored = await self._store.retrieve(spec.home, [point.id])
        return pb.InsertVectorResponse(vector=vector_message(stored[0], request.collection))

    async def UpsertVectors(self, request: pb.UpsertVectorsRequest, call: Call) -> pb.UpsertVectorsResponse:
        started = time.monotonic()
        spec = await self._spec(call, "collection", request.collection)
        if not request.vectors:
            raise invalid("vectors", "must hold at least one vector")
        if len(request.vectors) > self._max_upsert_vectors:
            raise invalid(
                "vectors",
                f"has {len(request.vectors)} vectors; limits.vectors_per_upsert is "
                f"{self._max_upsert_vectors}: send them in several calls, or as a batch job "
                "(BatchService.UploadBatchJob)",
            )
        first_index: dict[str, int] = {}
        points = []
        for start in range(0, len(request.vectors), _CHECK_SLICE):
            if start:
                await asyncio.sleep(0)  # a large upsert lets other callers run while it is checked
            chunk = request.vectors[start : start + _CHECK_SLICE]
            rows = check.embedding_rows([v.embedding for v in chunk], spec.dimension)
            for j, v in enumerate(chunk):
                i = start + j
                point = self._point(f"vectors[{i}]", v, spec, None if rows is None else rows[j])
                if point.id in first_index:
                    raise invalid(
                        f"vectors[{i}].id", f"{point.id!r} repeats vectors[{first_index[point.id]}].id"
                    )
                first_index[point.id] = i
                points.append(point)
        await self._embed_texts(points, lambda i: f"vectors[{i}]", spec, request.collection, call)
        # Into the generation whose model (and dimension) the points were checked against
        # and embedded with, even when a re-embed switches the name meanwhile.
        await self._require_home(call, request.collection, spec, started)
        await self._store.upsert(spec.home, points)
        return pb.UpsertVectorsResponse(upserted_count=len(points))

    async def GetVector(self, request: pb.GetVectorRequest, call: Call) -> pb.GetVectorResponse:
        name = self._physical(call, "collection", request.collection)
        vid = check.vector_id("id", request.id)
        found = await self._store.retrieve(name, [vid])
        if not found:
            raise not_found(f"vector {vid!r} in collection {request.collection!r}")
        return pb.GetVectorResponse(vector=vector_message(found[0], request.collection))

    async def DeleteVectors(self, request: pb.DeleteVectorsRequest, call: Call) -> pb.DeleteVectorsResponse:
        name = self._physical(call, "collection", request.collection)
        selector = request.WhichOneof("selector")
        if selector == "ids":
            if not request.ids.ids:
                raise invalid("ids.ids", "must list at least one id")
            for j, vid in enumerate(request.ids.ids):
                check.vector_id(f"ids.ids[{j}]", vid)
            deleted = await self._store.delete_ids(name, list(request.ids.ids))
        elif selector == "filter":
            check.filter_("filter", request.filter)
            if not request.allow_all and not check.has_conditions(request.filter):
                raise invalid(
                    "filter",
                    "has no conditions, so it matches every vector in the collection: "
                    "set allow_all to delete them all",
                )
            deleted = await self._store.delete_matching(name, request.filter)
        else:
            raise invalid(
                "selector", "set ids or filter (an empty filter with allow_all deletes every vector)"
            )
        return pb.DeleteVectorsResponse(deleted_count=deleted)

    async def SearchVectors(self, request: pb.SearchVectorsRequest, call: Call) -> pb.SearchVectorsResponse:
        spec = await self._spec(call, "collection", request.collection)
        if request.query_vector and request.query_text:
            raise invalid("query_text", "set query_vector or query_text, not both")
        if request.query_text:
            self._embeddings.check_text("query_text", request.query_text)
            self._check_query_model(request, spec)
        elif not request.query_vector:
            raise invalid("query_vector", "is required (or give query_text)")
        elif request.model:
            raise invalid("model", "names the model for query_text; leave it empty with query_vector")
        query = SearchQuery(
            vector=()
            if request.query_text
            else check.embedding_values("query_vector", request.query_vector, spec.dimension, spec.name),
            limit=check.bounded("limit", request.limit, 10, MAX_LIMIT),
            offset=_offset(request.offset),
            filter=self._filter(request),
            score_threshold=(
                check.finite_number("score_threshold", request.score_threshold)
                if request.HasField("score_threshold")
                else None
            ),
            with_vector=request.with_embedding,
            with_metadata=request.with_metadata,
            exact=request.exact,
        )
        if request.query_text:  # the whole request is valid: now spend the model call
            query = dataclasses.replace(query, vector=await self._query_embedding(request, spec, call))
        started = time.perf_counter()
        hits = await self._store.search(spec.home, query)  # the generation query_text was embedded for
        elapsed_ms = (time.perf_counter() - started) * 1000
        response = pb.SearchVectorsResponse(query_time_ms=elapsed_ms)
        add_hits(response.results, hits, request.with_text)
        return response

    async def QueryVectors(self, request: pb.QueryVectorsRequest, call: Call) -> pb.QueryVectorsResponse:
        spec = await self._spec(call, "collection", request.collection)
        planned = await query_plan.plan(request, spec, self._query_parts(request.collection, spec, call))
        started = time.perf_counter()
        fetched = await query_plan.fetch(planned, lambda q: self._store.query(spec.home, q))
        hits = query_plan.ordered(fetched, planned)
        elapsed_ms = (time.perf_counter() - started) * 1000
        response = pb.QueryVectorsResponse(query_time_ms=elapsed_ms)
        if planned.group_by is None:
            add_hits(response.results, hits, request.with_text)
        else:
            for value, members in query_plan.groups(hits, planned):
                group = response.groups.add(value=field_value(value))
                add_hits(group.results, members, request.with_text)
        return response

    async def FacetVectors(self, request: pb.FacetVectorsRequest, call: Call) -> pb.FacetVectorsResponse:
        name = self._physical(call, "collection", request.collection)
        key = check.metadata_path("key", request.key)
        limit = check.bounded("limit", request.limit, 10, MAX_LIMIT)
        counted = await self._store.facet(name, key, self._filter(request), limit)
        return pb.FacetVectorsResponse(
            hits=[pb.FacetHit(value=field_value(value), count=count) for value, count in counted]
        )

    async def ScrollVectors(self, request: pb.ScrollVectorsRequest, call: Call) -> pb.ScrollVectorsResponse:
        name = self._physical(call, "collection", request.collection)
        page = await self._store.scroll(
            name,
            self._filter(request),
            check.bounded("page_size", request.page_size, 100, MAX_LIMIT),
            request.page_token,
            request.with_embedding,
            request.with_metadata,
        )
        return pb.ScrollVectorsResponse(
            vectors=[vector_message(p, request.collection, request.with_text) for p in page.points],
            next_page_token=page.next_token,
        )

    async def CountVectors(self, request: pb.CountVectorsRequest, call: Call) -> pb.CountVectorsResponse:
        name = self._physical(call, "collection", request.collection)
        return pb.CountVectorsResponse(count=await self._store.count(name, self._filter(request)))

    # -- embeddings -----------------------------------------------------------------------

    async def GenerateEmbedding(
        self, request: pb.GenerateEmbeddingRequest, call: Call
    ) -> pb.GenerateEmbeddingResponse:
        if request.text and request.texts:
            raise invalid("texts", "set text or texts, not both")
        if not request.text and not request.texts:
            raise invalid("text", "is required (or give texts)")
        texts, field = ([request.text], "text") if request.text else (list(request.texts), "texts")
        started = time.perf_counter()
        result = await self._embeddings.generate(
            request.model,
            texts,
            normalize=request.normalize,
            urgent=request.urgent,
            deadline=call.deadline,
            tenant=_tenant(call),
            field=field,
            cache=_text_cache_use(call),
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        if isinstance(result, Queued):
            return pb.GenerateEmbeddingResponse(
                model=result.model, job_id=result.job_id, processing_time_ms=elapsed_ms
            )
        if result.cache:
            call.response_metadata[status.CACHE_STATUS] = status.cache_status(result.cache)
        vectors = result.vectors
        response = pb.GenerateEmbeddingResponse(
            model=result.model, dimensions=int(vectors.shape[1]), processing_time_ms=elapsed_ms
        )
        for row in vectors:
            response.embeddings.add().values.extend(row.tolist())
        if request.text:  # the deprecated single-text field, for older clients
            response.embedding.extend(response.embeddings[0].values)
        return response

    async def ListModels(self, request: pb.ListModelsRequest, call: Call) -> pb.ListModelsResponse:
        return self._embeddings.list_models()

    # -- helpers --------------------------------------------------------------------------

    async def _query_embedding(
        self, request: pb.SearchVectorsRequest, spec: CollectionSpec, call: Call
    ) -> np.ndarray:
        # A model of another dimension is fixed by naming another one: `model` is named.
        return await self._embed_query(
            "query_text", request.query_text, request.model, spec, request.collection, call, "model"
        )

    async def _embed_query(
        self,
        field: str,
        text: str,
        model: str,
        spec: CollectionSpec,
        visible_name: str,
        call: Call,
        dimension_field: str,
    ) -> np.ndarray:
        """`text` embedded with `model` (the collection's when empty), which must make vectors
        of the collection's dimension."""
        # No per-text cache: the search's answer is cached whole, keyed by what `model` resolves
        # to (its cache option's model_field).
        if spec.embedding_model:
            await self._require_same_space(spec, visible_name, call)
        embedded = await self._embeddings.embed(
            model or spec.embedding_model,
            [text],
            deadline=call.deadline,
            tenant=_tenant(call),
            field=field,
        )
        vectors = embedded.vectors
        if vectors.shape[1] != spec.dimension:
            raise invalid(
                dimension_field,
                f"{embedded.model!r} makes {vectors.shape[1]}-dimensional embeddings but collection "
                f"{visible_name!r} has dimension {spec.dimension}",
            )
        return vectors[0]

    def _query_parts(self, visible_name: str, spec: CollectionSpec, call: Call) -> query_plan.Parts:
        """What planning a QueryVectors needs from the servicer: text embedded with the
        collection's model, and stored examples' vectors."""

        async def embed(field: str, text: str) -> list[float]:
            if self._embeddings is None:
                raise invalid(field, "is not accepted here: this gateway embeds no text")
            self._embeddings.check_text(field, text)
            return (await self._embed_query(field, text, "", spec, visible_name, call, field)).tolist()

        async def vectors(ids: list[str]) -> dict[str, list[float]]:
            return {p.id: p.vector for p in await self._store.retrieve(spec.home, ids)}

        return query_plan.Parts(embed=embed, vectors=vectors, visible_name=visible_name)

    @staticmethod
    def _physical(call: Call, field: str, name: str) -> str:
        """The stored name of the caller's collection `name` (tenants live in prefixes)."""
        return physical(_tenant(call), check.collection_name(field, name))

    async def _spec(self, call: Call, field: str, visible_name: str) -> CollectionSpec:
        # Keyed by what the caller said: only names that passed validation are ever stored,
        # so a hit needs no second look at the name.
        key = (_tenant(call), visible_name)
        now = time.monotonic()
        cached = self._specs.get(key)
        if cached is not None and now - cached[0] < SPEC_TTL_SECONDS:
            return cached[1]
        spec = (await self._store.get_collection(self._physical(call, field, visible_name))).spec
        self._specs[key] = (now, spec)
        return spec

    async def _require_home(
        self, call: Call, visible_name: str, spec: CollectionSpec, started: float
    ) -> None:
        """ABORTED when a slow write's collection was re-embedded meanwhile: its points were
        made for the generation the name no longer resolves to, and are written again by
        the caller's retry (jobs/reembed.py carries over only writes that end soon after)."""
        if time.monotonic() - started <= WRITE_RECHECK_SECONDS:
            return
        self._specs.pop((_tenant(call), visible_name), None)
        if (await self._spec(call, "collection", visible_name)).home != spec.home:
            raise ApiError(
                grpc.StatusCode.ABORTED,
                f"collection {visible_name!r} moved to new embeddings (a re-embed job) during this "
                "write: nothing was written; send it again",
            )

    def _point(
        self, field: str, v: resources_pb2.Vector, spec: CollectionSpec, row: np.ndarray | None = None
    ) -> Point:
        """The checked point; one given by text has no vector yet (`_embed_texts` adds it).
        `row`: its embedding, already checked with the rest of its request's (embedding_rows)."""
        vid = check.vector_id(f"{field}.id", v.id)
        if v.text:
            if self._embeddings is None:
                raise invalid(f"{field}.text", "is not accepted here: this gateway embeds no text")
            self._embeddings.check_text(f"{field}.text", v.text)
        values = None
        if row is not None:
            values = row
        elif v.embedding or not v.text:
            values = check.embedding(f"{field}.embedding", v.embedding, spec.dimension, spec.name)
        elif not spec.embedding_model:
            raise invalid(
                f"{field}.text",
                f"can stand in for the embedding only in a collection bound to a model, and "
                f"{spec.name!r} is not: give embedding, or create the collection with embedding_model",
            )
        metadata = struct_to_dict(v.metadata)
        check.metadata(f"{field}.metadata", metadata)
        # A caller's own vector keeps no model: recorded as given, the caller's responsibility.
        return Point(id=vid, vector=values, metadata=metadata, text=v.text or None)

    async def _embed_texts(
        self,
        points: list[Point],
        field_of: Callable[[int], str],  # the request field of points[i], for errors
        spec: CollectionSpec,
        visible_name: str,
        call: Call,
    ) -> None:
        """Embeds, with the collection's model, the points given by text, in place; drops the
        texts after when the collection keeps none."""
        todo = [i for i, p in enumerate(points) if p.vector is None]
        if todo:
            await self._embed_points(points, todo, field_of, spec, visible_name, call)
        if not spec.store_text:
            for point in points:
                point.text = None

    async def _embed_points(
        self,
        points: list[Point],
        todo: list[int],
        field_of: Callable[[int], str],
        spec: CollectionSpec,
        visible_name: str,
        call: Call,
    ) -> None:
        if len(todo) > self._embeddings.texts_per_call:
            raise invalid(
                field_of(todo[0]).split("[")[0],
                f"has {len(todo)} vectors given by text; limits.embed_texts_per_call is "
                f"{self._embeddings.texts_per_call}: send them in several calls, or as a batch job "
                "(BatchService.SubmitBatchJob)",
            )
        await self._require_same_space(spec, visible_name, call)
        texts = [points[i].text for i in todo]
        embedded = await self._embeddings.embed(
            spec.embedding_model,
            texts,
            deadline=call.deadline,
            tenant=_tenant(call),
            field=f"{field_of(todo[0])}.text" if len(todo) == 1 else "vectors.text",
            cache=CacheUse(call.method.path, bypass=status.asks_no_cache(call.metadata)),
        )
        if embedded.vectors.shape[1] != spec.dimension:
            why = f"it now makes {embedded.vectors.shape[1]}-dimensional embeddings"
            raise space_error(visible_name, spec.embedding_model, why)
        now = time.time()
        for row, i in zip(embedded.vectors, todo, strict=True):
            point = points[i]
            point.vector = row.tolist()
            point.embedding_model = spec.embedding_model
            point.embedded_at = now

    async def _bound(self, spec: CollectionSpec, model: str, call: Call) -> CollectionSpec:
        """`spec` bound to `model`: its resolved name, dimension and fingerprint."""
        if self._fingerprints is None:
            raise invalid("collection.embedding_model", "is not accepted here: this gateway embeds no text")
        resolved, probes = await self._fingerprints.take(model, deadline=call.deadline, tenant=_tenant(call))
        made = int(probes.shape[1])
        if spec.dimension not in (0, made):
            raise invalid(
                "collection.dimension",
                f"is {spec.dimension} but model {resolved!r} makes {made}-dimensional embeddings: "
                "leave it 0 to take the model's",
            )
        return dataclasses.replace(
            spec, dimension=made, embedding_model=resolved, fingerprint=as_fingerprint(probes)
        )

    async def _fingerprint_state(self, spec: CollectionSpec, call: Call) -> tuple[int, str]:
        """What GetCollection / ListCollections say of a bound collection's model now."""
        if not spec.embedding_model:
            return resources_pb2.FINGERPRINT_STATE_UNSPECIFIED, ""
        if self._fingerprints is None:
            return resources_pb2.FINGERPRINT_STATE_UNCHECKED, "this gateway embeds no text"
        try:
            why = await self._fingerprints.check(
                spec.embedding_model, spec.fingerprint, deadline=call.deadline, tenant=_tenant(call)
            )
        except ApiError as e:  # the model is down or unknown now: say so, the collection is fine
            return resources_pb2.FINGERPRINT_STATE_UNCHECKED, e.message
        if why:
            return resources_pb2.FINGERPRINT_STATE_MISMATCH, why
        return resources_pb2.FINGERPRINT_STATE_MATCHES, ""

    async def _rollback_model(self, spec: CollectionSpec) -> str:
        """The model of the generation a re-embed replaced, while it is kept."""
        if not spec.previous:
            return ""
        try:
            return (await self._store.get_collection(spec.previous)).spec.embedding_model
        except ApiError as e:
            if e.code != grpc.StatusCode.NOT_FOUND:  # replaced by another re-embed meanwhile
                raise
            return ""

    async def _require_same_space(self, spec: CollectionSpec, visible_name: str, call: Call) -> None:
        """FAILED_PRECONDITION when the bound model no longer answers like its fingerprint."""
        why = await self._fingerprints.check(
            spec.embedding_model, spec.fingerprint, deadline=call.deadline, tenant=_tenant(call)
        )
        if why:
            raise space_error(visible_name, spec.embedding_model, why)

    def _check_query_model(self, request: pb.SearchVectorsRequest, spec: CollectionSpec) -> None:
        """A bound collection is searched by text with its own model only."""
        if not spec.embedding_model or not request.model:
            return
        asked = self._embeddings.resolve(request.model)
        if asked != spec.embedding_model:
            raise ApiError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"model: collection {request.collection!r} is bound to model {spec.embedding_model!r}; "
                f"query_text embedded with {asked!r} would be compared in another embedding space: "
                f"leave model empty or name {spec.embedding_model!r}",
            )

    @staticmethod
    def _filter(request):
        if not request.HasField("filter"):
            return None
        check.filter_("filter", request.filter)
        return request.filter


def _tenant(call: Call) -> str:
    return call.state.get("principal", ANONYMOUS).tenant


def _text_cache_use(call: Call) -> CacheUse | None:
    """Per-text caching for a method whose cache option says CACHE_KIND_EMBEDDING, counted under
    the method; bypassed when the caller sent Cache-Control: no-cache."""
    if call.method.cache.kind != options_pb2.CACHE_KIND_EMBEDDING:
        return None
    return CacheUse(call.method.path, bypass=status.asks_no_cache(call.metadata))


def _offset(value: int) -> int:
    if value > MAX_OFFSET:
        raise invalid("offset", f"must be at most {MAX_OFFSET}, got {value}")
    return value
