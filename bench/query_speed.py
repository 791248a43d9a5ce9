"""Issue 18: QueryVectors and FacetVectors latency at 100k texts (--quick: 10k).

The collection holds N real texts (the first N docstring paragraphs of bench/corpus.py's
order) with a random unit vector each, written through a gateway by UpsertVectors giving
both `embedding` and `text`: embedding 100k texts with the local model would take most of
an hour on two cores, and the gateway computes and stores the BM25 vector of every text it
keeps whatever made the dense one, so the keyword half is real. Metadata: the text's
package, a keyword field with an index (the facet key).

Measured once the gateway's own build has put every dense vector in an HNSW graph
(GetCollection says indexed, indexed_vector_count = vector_count); the seconds from the end of
the writes to then are reported with the nearest row.

Side by side, interleaved, uncached (`cache-control: no-cache`), one call in flight, each
call with the next of 200 queries: a random unit vector and three words of a held-out
paragraph (its first three words that BM25 keeps):
- nearest(vector), the baseline;
- hybrid(text, vector) with the fusion unset (chosen per query: a keyword probe, then RRF with
  the phrase ranking or DBSF), with RRF and with DBSF: the same vector, so no model call is timed;
- keyword(text), BM25 alone;
- FacetVectors on the package field, unfiltered and filtered to one package.
Targets: hybrid p50 ≤ 3 × nearest p50; facet over 100k ≤ 50 ms p50.
"""

from __future__ import annotations

import itertools
import re
import time

from bench import corpus
from bench.context import BenchContext
from bench.harness import interleaved, row
from citadel.server.store import keywords
from citadel.vector.v1 import filter_pb2 as fpb
from citadel.vector.v1 import resources_pb2 as rpb
from citadel.vector.v1 import vector_service_pb2 as pb

SECTION = "query speed (QueryVectors and FacetVectors, 384-d random vectors + real texts)"
N, QUICK_N = 100_000, 10_000
N_QUERIES = 200
SAMPLES = 300
UPSERT_BATCH = 1000
COLLECTION = "speed"
NO_CACHE = (("cache-control", "no-cache"),)
INDEX_WAIT_S = 600
TARGET_HYBRID_RATIO, TARGET_FACET_MS = 3.0, 50.0
HYBRIDS = (
    "hybrid, fusion per query (default; text + vector)",
    "hybrid RRF (text + vector)",
    "hybrid DBSF (text + vector)",
)


def run(ctx: BenchContext) -> list[dict]:
    n = QUICK_N if ctx.quick else N
    pairs = corpus._cached_paragraphs(corpus._base_roots())
    if len(pairs) < n + N_QUERIES:
        raise RuntimeError(f"only {len(pairs)} docstring paragraphs installed; {n + N_QUERIES} needed")
    texts, packages = [t for _, t in pairs[:n]], [p for p, _ in pairs[:n]]
    vectors = ctx.vectors(n, 384)
    query_vectors = ctx.vectors(N_QUERIES, 384, seed=11)
    query_texts = [_three_words(t) for _, t in pairs[n : n + N_QUERIES]]
    package, share = _package_near(packages, 0.10)
    with ctx.gateway("query-speed") as gw:
        stub = gw.stub()
        stub.CreateCollection(
            pb.CreateCollectionRequest(
                collection=rpb.Collection(
                    name=COLLECTION,
                    dimension=384,
                    distance=rpb.DISTANCE_COSINE,
                    indexed_fields=[rpb.IndexedField(key="package", type=rpb.FIELD_TYPE_KEYWORD)],
                )
            ),
            timeout=60,
        )
        started = time.monotonic()
        for start in range(0, n, UPSERT_BATCH):
            batch = [
                rpb.Vector(
                    id=f"t{i}",
                    embedding=vectors[i].tolist(),
                    text=texts[i],
                    metadata={"package": packages[i], "kind": "docstring"},
                )
                for i in range(start, min(n, start + UPSERT_BATCH))
            ]
            stub.UpsertVectors(pb.UpsertVectorsRequest(collection=COLLECTION, vectors=batch), timeout=300)
        upsert_s = time.monotonic() - started
        calls = _calls(stub, query_vectors, query_texts, package)
        build_s = _wait_indexed(stub)
        stats = interleaved(calls, ctx.samples(SAMPLES))
        facet = stub.FacetVectors(
            pb.FacetVectorsRequest(collection=COLLECTION, key="package"), metadata=NO_CACHE
        )
    label = f"{n // 1000}k texts"
    near = stats["nearest"]
    rows = [
        row(
            SECTION,
            f"{label}: UpsertVectors with embedding and text, {UPSERT_BATCH} per call",
            points_per_s=n / upsert_s,
            note="vectors random unit, texts real; BM25 vectors computed by the gateway",
        ),
        row(
            SECTION,
            f"{label}: nearest(vector), HNSW",
            near,
            baseline="-",
            indexed_after_s=build_s,
            note="seconds from the last write until GetCollection said every vector indexed",
        ),
    ]
    for name in HYBRIDS + ("keyword(text)",):
        s = stats[name]
        extra = {}
        if name.startswith("hybrid"):
            extra["note"] = f"target ≤ {TARGET_HYBRID_RATIO:g} × nearest: " + (
                "met" if s.p50 <= TARGET_HYBRID_RATIO * near.p50 else "MISSED"
            )
        rows.append(row(SECTION, f"{label}: {name}", s, baseline="nearest", ratio=s.p50 / near.p50, **extra))
    for name, note in (
        ("facet package", f"{len(facet.hits)} values returned, top {facet.hits[0].count:,}"),
        ("facet package, filtered", f"package={package!r} ({share:.0%} of points)"),
    ):
        s = stats[name]
        met = "met" if s.p50 <= TARGET_FACET_MS else "MISSED"
        rows.append(
            row(
                SECTION,
                f"{label}: FacetVectors {name[6:]}",
                s,
                note=f"{note}; target p50 ≤ {TARGET_FACET_MS:g} ms: {met}",
            )
        )
    return rows


def _calls(stub, query_vectors, query_texts: list[str], package: str) -> dict:
    """One callable per kind of call, each taking the next query on every call."""

    def cycling(build):
        requests = itertools.cycle([build(i) for i in range(N_QUERIES)])
        return requests

    def query(build):
        requests = cycling(build)
        return lambda: stub.QueryVectors(next(requests), timeout=60, metadata=NO_CACHE)

    def vec(i):
        return query_vectors[i].tolist()

    only = fpb.Filter(
        must=[fpb.Condition(field=fpb.FieldCondition(key="package", match=fpb.Match(keyword=package)))]
    )
    facet = pb.FacetVectorsRequest(collection=COLLECTION, key="package")
    facet_filtered = pb.FacetVectorsRequest(collection=COLLECTION, key="package", filter=only)
    return {
        "nearest": query(
            lambda i: pb.QueryVectorsRequest(collection=COLLECTION, nearest=pb.NearestQuery(vector=vec(i)))
        ),
        HYBRIDS[0]: query(
            lambda i: pb.QueryVectorsRequest(
                collection=COLLECTION, hybrid=pb.HybridQuery(text=query_texts[i], vector=vec(i))
            )
        ),
        HYBRIDS[1]: query(
            lambda i: pb.QueryVectorsRequest(
                collection=COLLECTION,
                hybrid=pb.HybridQuery(text=query_texts[i], vector=vec(i), fusion=pb.FUSION_RRF),
            )
        ),
        HYBRIDS[2]: query(
            lambda i: pb.QueryVectorsRequest(
                collection=COLLECTION,
                hybrid=pb.HybridQuery(text=query_texts[i], vector=vec(i), fusion=pb.FUSION_DBSF),
            )
        ),
        "keyword(text)": query(
            lambda i: pb.QueryVectorsRequest(
                collection=COLLECTION, keyword=pb.KeywordQuery(text=query_texts[i])
            )
        ),
        "facet package": lambda: stub.FacetVectors(facet, timeout=60, metadata=NO_CACHE),
        "facet package, filtered": lambda: stub.FacetVectors(facet_filtered, timeout=60, metadata=NO_CACHE),
    }


def _wait_indexed(stub) -> float:
    """Seconds until the collection says every vector is in a graph (the gateway builds on its
    own once writes pause)."""
    started = time.monotonic()
    while time.monotonic() - started < INDEX_WAIT_S:
        c = stub.GetCollection(pb.GetCollectionRequest(name=COLLECTION), timeout=30, metadata=NO_CACHE)
        c = c.collection
        if c.indexing_state == rpb.INDEXING_STATE_INDEXED and c.indexed_vector_count >= c.vector_count:
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"the collection was not indexed within {INDEX_WAIT_S} s")


def _three_words(text: str) -> str:
    """Its first three plain words that BM25 keeps (no stopwords)."""
    words = [w for w in re.findall(r"[A-Za-z]{3,}", text) if keywords.query(w)[0]]
    return " ".join(words[:3]) or "function"


def _package_near(packages: list[str], share: float) -> tuple[str, float]:
    counts: dict[str, int] = {}
    for p in packages:
        counts[p] = counts.get(p, 0) + 1
    best = min(counts.items(), key=lambda kv: abs(kv[1] / len(packages) - share))
    return best[0], best[1] / len(packages)
