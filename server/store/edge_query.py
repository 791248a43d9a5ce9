"""Translates a StoreQuery into qdrant-edge's query request: mirrors `qdrant_query.py`.

Hybrid search is two prefetches (dense and BM25, each with the filter and `candidates`
results), and a third when the query has a phrase (BM25 again, over the texts holding that
exact phrase), fused by RRF or DBSF; a keyword query with a phrase ranks only the texts
holding it; MMR re-ranks the candidates of what it wraps by
similarity to the dense query; recommend scores against the examples' vectors.
"""

from __future__ import annotations

import qdrant_edge as edge

from citadel.server.store.base import StoreQuery
from citadel.server.store.keywords import SPARSE, TEXT_FIELD

RRF_K = 2  # Qdrant's default


def to_edge_query(q: StoreQuery, efilter: edge.Filter | None, params: edge.SearchParams) -> edge.QueryRequest:
    common = dict(
        limit=q.limit,
        offset=q.offset or None,
        filter=efilter,
        params=params,
        with_vector=q.with_vector,
        with_payload=True,  # the original id lives in the payload
        score_threshold=q.score_threshold,
    )
    if q.positives:
        examples = edge.RecommendQuery([list(v) for v in q.positives], [list(v) for v in q.negatives])
        rank = edge.Query.RecommendBestScore if q.strategy == "best_score" else edge.Query.RecommendSumScores
        return edge.QueryRequest(query=rank(examples), **common)
    if q.dense is not None and q.sparse is not None:
        halves = [
            edge.Prefetch(
                limit=q.candidates, query=edge.Query.Nearest(list(q.dense)), filter=efilter, params=params
            ),
            edge.Prefetch(
                limit=q.candidates, query=edge.Query.Nearest(_sparse(q), using=SPARSE), filter=efilter
            ),
        ]
        if q.phrase is not None:
            halves.append(
                edge.Prefetch(
                    limit=q.candidates,
                    query=edge.Query.Nearest(_sparse(q), using=SPARSE),
                    filter=_with_phrase(efilter, q.phrase),
                )
            )
        fusion = edge.Fusion.Rrf(k=RRF_K, weights=list(q.weights) if q.weights else None)
        fused = fusion if q.fusion == "rrf" else edge.Fusion.Dbsf()
        if q.diversity is None:
            return edge.QueryRequest(query=fused, prefetches=halves, **common)
        candidates = edge.Prefetch(limit=q.mmr_candidates, query=fused, prefetches=halves)
        return edge.QueryRequest(query=_mmr(q), prefetches=[candidates], **common)
    if q.sparse is not None:
        if q.phrase is not None:  # only the texts holding it (the planner's verbatim probe)
            common["filter"] = _with_phrase(efilter, q.phrase)
        return edge.QueryRequest(query=edge.Query.Nearest(_sparse(q), using=SPARSE), **common)
    if q.diversity is not None:
        return edge.QueryRequest(query=_mmr(q), **common)
    return edge.QueryRequest(query=edge.Query.Nearest(list(q.dense)), **common)


def _with_phrase(efilter: edge.Filter | None, phrase: str) -> edge.Filter:
    holds = edge.FieldCondition(key=TEXT_FIELD, match=edge.MatchPhrase(phrase))
    return edge.Filter(must=[holds] if efilter is None else [holds, efilter])


def _sparse(q: StoreQuery) -> edge.SparseVector:
    indices, values = q.sparse
    return edge.SparseVector(indices, values)


def _mmr(q: StoreQuery) -> edge.Mmr:
    # qdrant-edge takes Qdrant's internal lambda: the weight of relevance, 1 - diversity.
    return edge.Mmr(list(q.dense), 1.0 - q.diversity, q.mmr_candidates)
