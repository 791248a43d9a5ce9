"""One collection of the embedded engine on disk, and its open state.

    <root>/<name>/collection.json   our metadata: the spec, and which shard dir is live
    <root>/<name>/shard-<n>/        a qdrant-edge shard (segments, WAL, edge_config.json)

collection.json is written last on create and replaced atomically when the background index
build swaps in a new shard generation, so after a crash at any point the collection opens on
a complete shard. Shard dirs it does not name are leftovers of an interrupted build.

Writes go through `apply` / `upsert` under `write_lock`: while an index build works on a copy,
every write is also kept in `journal`, to be replayed onto the copy before it replaces the live
shard. An upsert is journaled as its point ids only; the replay reads those points back from
the live shard, so a build during a large ingest holds no second copy of what arrives.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import qdrant_edge as edge

from citadel.server.store.base import CollectionSpec, FieldKind
from citadel.server.store.keywords import SPARSE, TEXT_FIELD
from citadel.server.store.layout import CollectionLayout

META = "collection.json"

# Threads of each shard's search pool (per-segment reads in parallel): the engine's own default
# is 8 per shard even on 2 cores, so 1,000 collections held 8,000 threads and took 24-26 s to
# open against 1-3 s with 2 (bench tenancy); more threads than cores buy a search nothing.
# Collections made before keep theirs (it is part of a shard's stored config).
SEARCH_THREADS = max(1, min(4, len(os.sched_getaffinity(0))))
_DISTANCES = {"cosine": edge.Distance.Cosine, "dot": edge.Distance.Dot, "euclid": edge.Distance.Euclid}
# Text as store/keywords.py tokenises it for BM25 (words, lowercased, ASCII-folded), less
# stemming and stopwords: a full-text condition matches the words as written.
TEXT_INDEX = edge.TextIndexParams(
    tokenizer=edge.TokenizerType.Word, lowercase=True, ascii_folding=True, phrase_matching=True
)
INDEX_TYPES: dict[FieldKind, edge.PayloadSchemaType | edge.TextIndexParams] = {
    "text": TEXT_INDEX,
    "keyword": edge.PayloadSchemaType.Keyword,
    "integer": edge.PayloadSchemaType.Integer,
    "float": edge.PayloadSchemaType.Float,
    "bool": edge.PayloadSchemaType.Bool,
}


@dataclass(frozen=True)
class HnswParams:
    """HNSW graph and search settings, tuned on 100k MiniLM embeddings of real text (bench/
    engines.py sweeps ef). At 100k, ef 64 gives recall@10 0.986 at 0.8 ms p50 and ef 128 gives
    0.995 at 1.2 ms (filtered 0.987): 128 keeps headroom over 0.95 for harder data, filtered
    searches and larger collections.

    ef_construct 128, by measurement at 1M (384-d clustered, int8 graphs searched as the gateway
    searches: ef 128, rescored with oversampling 2): 64 builds in 0.55x the time (200k: 49 against
    89 s; 1M on a quiet machine: 251 s) and holds recall@10 at 200k (1.000) and 400k (0.994), but
    at 1M it gave 0.925 against 0.992 with 128, under the 0.95 fast search needs. The build is what
    stands between a bulk ingest and fast search; 128 still lands it within minutes at 1M."""

    m: int = 16
    ef_construct: int = 128
    ef: int = 128  # candidates per search; more is slower and closer to exact
    # Points not yet in an HNSW graph that make a background build worth it; until then
    # they are searched exactly, which costs about 1 ms per 5,000 384-d vectors.
    index_after: int = 5_000
    # int8 scalar quantization of indexed segments (kept in RAM, a quarter of the vectors'
    # size): graphs build about 5x faster on it (100k clustered 384-d: 18 s against 100 s)
    # and searches walk it, then rescore `oversampling` x limit candidates on the original
    # vectors, which is what keeps recall@10 at 1.0 where rescoring the limit alone gave 0.967.
    quantize: bool = True
    oversampling: float = 2.0
    # Segments the optimizer keeps apart rather than merging (0 would be the engine's
    # choice, one per CPU): merging an indexed segment with new points rebuilds its graph
    # from scratch, so with 2 segments every build re-indexed what the last one had (200k
    # in 40k steps: 20, 20, 36 s per step; with more segments 6, 10, 19, 13 s). Searches
    # visit every segment, so not many more than needed: bench/scale.py measures 1M.
    segments: int = 16
    # The original f32 vectors of indexed segments stay in their memory-mapped file instead of
    # being read into memory: searches walk the int8 copy and touch the originals only to
    # rescore a few candidates. 100k clustered 384-d in process: 400 MB resident against 546 MB
    # once indexed, and loading a built generation beside the live one no longer doubles them.
    # The int8 copy and the graph are memory-mapped too, and read in by the store once the
    # generation before is closed (see `_config`).
    on_disk_vectors: bool = True


@dataclass
class EdgeCollection:
    spec: CollectionSpec
    path: Path
    shard_dir: str
    shard: edge.EdgeShard
    write_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # While a build works on a copy: operations, and for upserts the list of their point ids.
    journal: list[edge.UpdateOperation | list[str]] | None = None
    # Keys filtered on that have no payload index yet; the next build creates them.
    wanted_indexes: dict[str, FieldKind] = field(default_factory=dict)
    closed: bool = False  # set under write_lock when deleted or closed

    @property
    def shard_path(self) -> Path:
        return self.path / self.shard_dir

    def apply(self, op: edge.UpdateOperation) -> None:
        """Writes one operation (caller holds write_lock); durable once it returns (WAL)."""
        self.shard.update(op)
        if self.journal is not None:
            self.journal.append(op)

    def upsert(self, ids: list[str], points: list[edge.Point]) -> None:
        """Writes points whose ids are `ids` (caller holds write_lock); durable once it returns."""
        self.shard.update(edge.UpdateOperation.upsert_points(points))
        if self.journal is not None:
            self.journal.append(ids)

    def indexed_vectors(self) -> int:
        """Dense vectors in an HNSW graph. The engine's count also holds every BM25 vector
        (indexed as it is written), which made a collection that keeps text look indexed
        with no graph, so no build ever started."""
        indexed = self.shard.info().indexed_vectors_count
        if self.spec.keywords:
            with_keywords = edge.Filter(must=[edge.HasVectorCondition(SPARSE)])
            indexed -= self.shard.count(edge.CountRequest(exact=True, filter=with_keywords))
        return max(0, indexed)

    def indexed_keys(self) -> set[str]:
        return set(self.shard.info().payload_schema)


def create(root: Path, spec: CollectionSpec, hnsw: HnswParams) -> EdgeCollection:
    path = root / spec.name
    path.mkdir(parents=True)
    shard_dir = "shard-1"
    shard = None
    try:
        shard = edge.EdgeShard.create(str(path / shard_dir), _config(spec, hnsw))
        for key, kind in spec.indexed_fields:
            shard.update(edge.UpdateOperation.create_field_index(key, INDEX_TYPES[kind]))
        if spec.keywords:
            shard.update(edge.UpdateOperation.create_field_index(TEXT_FIELD, TEXT_INDEX))
        shard.flush()
        write_meta(path, spec, shard_dir)
    except BaseException:
        # Nothing left behind, or the name could not be created again until a restart.
        if shard is not None:
            shard.close()
        shutil.rmtree(path, ignore_errors=True)
        raise
    return EdgeCollection(spec=spec, path=path, shard_dir=shard_dir, shard=shard)


def load(path: Path) -> EdgeCollection | None:
    """The collection at path, or None when its creation never finished (no metadata)."""
    meta = path / META
    if not meta.exists():
        return None
    raw = json.loads(meta.read_text())
    spec = CollectionSpec(
        name=raw["name"],
        dimension=raw["dimension"],
        distance=raw["distance"],
        description=raw["description"],
        indexed_fields=tuple((k, t) for k, t in raw["indexed_fields"]),
        created_at=raw["created_at"],
        # Absent in collections created before model binding: unbound, text kept.
        embedding_model=raw.get("embedding_model", ""),
        fingerprint=tuple(tuple(v) for v in raw.get("fingerprint", ())),
        store_text=raw.get("store_text", True),
        keywords=raw.get("keywords", False),  # absent: made before keyword search
        layout=CollectionLayout.from_chosen(raw.get("layout")),  # absent: made before layouts
    )
    for stale in path.glob("shard-*"):
        if stale.name != raw["shard"]:
            shutil.rmtree(stale)
    shard = edge.EdgeShard.load(str(path / raw["shard"]))
    return EdgeCollection(spec=spec, path=path, shard_dir=raw["shard"], shard=shard)


def write_meta(path: Path, spec: CollectionSpec, shard_dir: str) -> None:
    """Replaces collection.json atomically and durably (write, fsync, rename, fsync dir)."""
    raw = {
        **asdict(spec),
        "indexed_fields": [list(f) for f in spec.indexed_fields],
        "fingerprint": [list(v) for v in spec.fingerprint],
        "shard": shard_dir,
    }
    write_json(path / META, raw)


def write_json(path: Path, value: object) -> None:
    """Replaces the file at `path` with `value` as JSON, atomically and durably (write, fsync,
    rename, fsync the directory)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def next_shard_dir(current: str) -> str:
    return f"shard-{int(current.removeprefix('shard-')) + 1}"


def _config(spec: CollectionSpec, hnsw: HnswParams) -> edge.EdgeConfig:
    return edge.EdgeConfig(
        vectors=edge.EdgeVectorParams(
            size=spec.dimension,
            distance=_DISTANCES[spec.distance],
            memory=edge.Memory.Cold if hnsw.on_disk_vectors else edge.Memory.Cached,
        ),
        sparse_vectors={SPARSE: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)}
        if spec.keywords
        else None,
        hnsw_config=edge.HnswIndexConfig(
            m=hnsw.m,
            ef_construct=hnsw.ef_construct,
            full_scan_threshold=10_000,  # KB, Qdrant's default: smaller filtered sets are scanned
            on_disk=hnsw.on_disk_vectors,  # mapped cold, as the int8 copy (_quantization)
        ),
        # The optimizer indexes a segment once it holds `index_after` vectors (threshold in KB).
        optimizers=edge.EdgeOptimizersConfig(
            indexing_threshold=max(1, hnsw.index_after * spec.dimension * 4 // 1024),
            default_segment_number=hnsw.segments or None,
        ),
        quantization_config=_quantization(hnsw),
        max_search_threads=SEARCH_THREADS,
    )


def _quantization(hnsw: HnswParams) -> edge.ScalarQuantizationConfig | None:
    if not hnsw.quantize:
        return None
    # quantile 0.99: the extreme 1% of values are clipped, so the int8 range covers the rest finely.
    # With the vectors on disk, the int8 copy (and the graph) are mapped cold: a built generation
    # then loads beside the live one without them (1M: +0.40 GiB in 1.3 s), and the store reads
    # them in once the live one is closed (edge_memory.read_in_searched). On the heap (Pinned,
    # what always_ram asks for) the load held them twice for a moment (1M: +0.93 GiB, 2.8 s),
    # which was the 1M ingest's memory peak; read in by the engine at load (Cached) a 1M restart
    # took 9-10 s. A collection that keeps its vectors in memory keeps this copy on the heap.
    memory = edge.Memory.Cold if hnsw.on_disk_vectors else edge.Memory.Pinned
    return edge.ScalarQuantizationConfig(type=edge.ScalarType.Int8, quantile=0.99, memory=memory)
