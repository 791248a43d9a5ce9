"""The vector store interface the servicer talks to.

Implementations: `store/qdrant.py` (qdrant-client: embedded local mode, or a Qdrant server /
cluster via QDRANT_URL) and the embedded Qdrant engine. Callers cannot tell them apart.

Inputs reaching a store are already validated by the servicer (names, dimensions, finite
values, filter shape); a store raises ApiError only for state it alone knows (NOT_FOUND,
ALREADY_EXISTS) or for backend failure (UNAVAILABLE).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from citadel.server.store.layout import CollectionLayout
from citadel.vector.v1 import filter_pb2

if TYPE_CHECKING:
    import numpy as np

Distance = Literal["cosine", "dot", "euclid"]
FieldKind = Literal["keyword", "integer", "float", "bool", "text"]

# Payload key under which the store keeps what is ours (original id, write time);
# user metadata keys may not start with it.
RESERVED_PAYLOAD_KEY = "_citadel"
# A collection's name may stand for a generation of it (`acme.docs~9f2c...`): the physical
# collection its points are in since a re-embed switched the name over (`switch`).
# Collection names cannot contain "~", so generations never meet a caller's names.
GENERATION = "~"


def generation_name(name: str, tag: str) -> str:
    return f"{name}{GENERATION}{tag}"


def is_generation(name: str) -> bool:
    return GENERATION in name


@dataclass(frozen=True)
class CollectionSpec:
    name: str
    dimension: int
    distance: Distance
    description: str = ""
    indexed_fields: tuple[tuple[str, FieldKind], ...] = ()
    created_at: float = 0.0  # unix seconds
    # Model binding: the resolved model name ("" when not bound), and its fingerprint, the
    # model's vectors for embeddings/fingerprint.py's probe texts when the collection was
    # created (compared by cosine, not hashed: backends of one model differ in the last bits).
    embedding_model: str = ""
    fingerprint: tuple[tuple[float, ...], ...] = ()
    store_text: bool = True  # keep vectors' source text
    # Keep a BM25 sparse vector of each stored text (store/keywords.py) and a text index on it:
    # every collection that keeps text, since keyword search exists.
    keywords: bool = False
    # Where the points are: the generation `name` resolves to now ("" or `name`: itself).
    physical: str = ""
    # The generation a re-embed switched away from, kept for rolling back ("": none), and
    # when (unix seconds).
    previous: str = ""
    switched_at: float = 0.0
    # What the switch's caller said the new generation held everything written before (a
    # re-embed's last catch-up pass began then): what reached the old one later is carried over.
    caught_up_at: float = 0.0
    # Its own cluster and storage settings (shards, replicas, HNSW, quantization, on-disk);
    # what it leaves unset follows the store's defaults.
    layout: CollectionLayout = CollectionLayout()

    @property
    def home(self) -> str:
        """The physical collection to read and write this spec's points in: a caller that
        embedded with this spec's model writes into the generation of that model's space."""
        return self.physical or self.name


IndexingState = Literal["indexed", "pending", "building", "failed"]


@dataclass(frozen=True)
class IndexProgress:
    """How much of a collection its vector index (HNSW graphs) covers; the rest is scanned."""

    indexed_vectors: int
    state: IndexingState


@dataclass(frozen=True)
class CollectionInfo:
    spec: CollectionSpec
    vector_count: int
    index_progress: IndexProgress | None = None  # None: the store does not say


@dataclass
class Point:
    id: str  # the user's id, never the store's internal one
    # A written point's vector may be the servicer's checked float32 array: the store makes it
    # a list (keywords.point_vectors) one slice at a time, as the engine takes it.
    vector: list[float] | np.ndarray | None
    metadata: dict | None
    created_at: float = 0.0  # unix seconds of the last write
    text: str | None = None  # stored source text
    embedding_model: str = ""  # the model that embedded `text`; "": the caller gave the vector
    embedded_at: float = 0.0  # unix seconds; 0 when the caller gave the vector

    def __reduce__(self):
        # Under --workers every search result crosses a process boundary: a tuple pickles
        # several times faster than a dataclass's state dict.
        return (
            Point,
            (
                self.id,
                self.vector,
                self.metadata,
                self.created_at,
                self.text,
                self.embedding_model,
                self.embedded_at,
            ),
        )


@dataclass
class ScoredPoint:
    point: Point
    score: float

    def __reduce__(self):
        return (ScoredPoint, (self.point, self.score))


@dataclass(frozen=True)
class SearchQuery:
    vector: Sequence[float]
    limit: int
    offset: int = 0
    filter: filter_pb2.Filter | None = None
    score_threshold: float | None = None
    with_vector: bool = False
    with_metadata: bool = False
    exact: bool = False


@dataclass(frozen=True)
class StoreQuery:
    """What QueryVectors asks a store, its texts already turned into vectors. What ranks:
    `positives` (recommend); else `dense` and `sparse` both (hybrid, fused); else either one
    (nearest; keyword)."""

    limit: int
    offset: int = 0
    dense: Sequence[float] | None = None
    sparse: tuple[list[int], list[float]] | None = None  # a BM25 query (store/keywords.py)
    fusion: Literal["rrf", "dbsf"] = "rrf"
    weights: tuple[float, ...] | None = None  # dense, keyword[, phrase] (RRF)
    candidates: int = 0  # each ranking's, before fusion
    # Hybrid: also rank by keyword the texts that hold this exact phrase (a third ranking);
    # keyword alone: rank only those texts.
    phrase: str | None = None
    positives: tuple[Sequence[float], ...] = ()
    negatives: tuple[Sequence[float], ...] = ()
    strategy: Literal["best_score", "sum_scores"] = "best_score"
    diversity: float | None = None  # MMR over `dense`, when set
    mmr_candidates: int = 0
    filter: filter_pb2.Filter | None = None
    score_threshold: float | None = None
    with_vector: bool = False
    with_metadata: bool = False


@dataclass
class Page:
    points: list[Point] = field(default_factory=list)
    next_token: str = ""  # empty on the last page


class VectorStore(Protocol):
    async def create_collection(self, spec: CollectionSpec) -> None:
        """Creates it, or raises ALREADY_EXISTS."""

    async def get_collection(self, name: str) -> CollectionInfo:
        """Returns it with its vector count, or raises NOT_FOUND."""

    async def list_collections(
        self, tenant: str | None = None, after: str = "", limit: int = 0
    ) -> list[CollectionSpec]:
        """Collections sorted by name: only `tenant`'s (server/tenancy.py) when given, "" for
        the tenant-less namespace; only those named after `after`; at most `limit` (0: all)."""

    async def delete_collection(self, name: str) -> None:
        """Deletes it and its vectors (every generation of it), or raises NOT_FOUND."""

    async def switch(self, name: str, generation: str, caught_up_at: float = 0.0) -> None:
        """Points `name` at the physical collection `generation` atomically: every call that
        resolves `name` after this returns sees it. The generation it pointed at before is
        kept as the spec's `previous` (the one before that is deleted), with the switch time
        and `caught_up_at`."""

    async def upsert(self, collection: str, points: Sequence[Point]) -> None:
        """Writes all points durably (replacing equal ids) before returning."""

    async def retrieve(self, collection: str, ids: Sequence[str]) -> list[Point]:
        """The points that exist among `ids`, with vector and metadata."""

    async def delete_ids(self, collection: str, ids: Sequence[str]) -> int:
        """Deletes those that exist; returns how many did."""

    async def delete_matching(self, collection: str, filter: filter_pb2.Filter) -> int:
        """Deletes every point matching the filter; returns how many."""

    async def search(self, collection: str, query: SearchQuery) -> list[ScoredPoint]:
        """Nearest points, best first."""

    async def query(self, collection: str, query: StoreQuery) -> list[ScoredPoint]:
        """Points ranked as `query` says, best first."""

    async def facet(
        self, collection: str, key: str, filter: filter_pb2.Filter | None, limit: int
    ) -> list[tuple[str | int | bool, int]]:
        """(value, count of points holding it) for the metadata field `key`, most first."""

    async def scroll(
        self,
        collection: str,
        filter: filter_pb2.Filter | None,
        limit: int,
        page_token: str,
        with_vector: bool,
        with_metadata: bool,
    ) -> Page:
        """Points in a stable order from `page_token` (empty: the start)."""

    async def count(self, collection: str, filter: filter_pb2.Filter | None) -> int:
        """Number of points matching the filter (all when None)."""

    async def close(self) -> None:
        """Flushes and releases files or connections."""
