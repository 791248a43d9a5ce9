"""Translates a StoreQuery into qdrant-client's Query API arguments: mirrors `edge_query.py`
(hybrid: the dense, the BM25 and, for a phrase, the phrase-holding BM25 prefetches, fused;
keyword with a phrase: BM25 over the texts holding it).

In a partitioned collection (store/qdrant_placement.py) every stage is filtered by the
partition, and keyword (BM25) rankings take their IDF statistics from the partition alone
(`IdfCorpusParams`): the scores of a collection of its own, and nothing learnt from them of
other tenants' texts."""

from __future__ import annotations

from typing import Any

from qdrant_client import models

from citadel.server.store.base import StoreQuery
from citadel.server.store.keywords import SPARSE, TEXT_FIELD
from citadel.server.store.qdrant_location import Location

RRF_K = 2  # Qdrant's default


def to_query_points(
    q: StoreQuery, where: Location | None = None, dense_params: models.SearchParams | None = None
) -> dict[str, Any]:
    """Keyword arguments of AsyncQdrantClient.query_points (all but the collection), within
    `where` (None: a collection of its own); `dense_params` go with every search of the dense
    vectors (a quantized collection's rescoring, as SearchVectors has it)."""
    where = where or Location(collection="")
    qfilter = where.filter(q.filter)
    scope = where.scope()
    idf = models.SearchParams(idf=models.IdfCorpusParams(corpus=scope)) if scope is not None else None
    common: dict[str, Any] = dict(
        limit=q.limit,
        offset=q.offset or None,
        query_filter=qfilter,
        score_threshold=q.score_threshold,
        with_payload=True,  # the original id lives in the payload
        with_vectors=[""] if q.with_vector else False,
    )
    if q.positives:
        strategy = (
            models.RecommendStrategy.BEST_SCORE
            if q.strategy == "best_score"
            else models.RecommendStrategy.SUM_SCORES
        )
        examples = models.RecommendInput(
            positive=[list(v) for v in q.positives],
            negative=[list(v) for v in q.negatives],
            strategy=strategy,
        )
        return dict(query=models.RecommendQuery(recommend=examples), search_params=dense_params, **common)
    if q.dense is not None and q.sparse is not None:
        halves = [
            models.Prefetch(query=list(q.dense), limit=q.candidates, filter=qfilter, params=dense_params),
            models.Prefetch(query=_sparse(q), using=SPARSE, limit=q.candidates, filter=qfilter, params=idf),
        ]
        if q.phrase is not None:
            phrased = _with_phrase(qfilter, q.phrase)
            halves.append(
                models.Prefetch(
                    query=_sparse(q), using=SPARSE, limit=q.candidates, filter=phrased, params=idf
                )
            )
        if q.fusion == "rrf":
            fused = models.RrfQuery(rrf=models.Rrf(k=RRF_K, weights=list(q.weights) if q.weights else None))
        else:
            fused = models.FusionQuery(fusion=models.Fusion.DBSF)
        if q.diversity is None:
            return dict(query=fused, prefetch=halves, **common)
        candidates = models.Prefetch(prefetch=halves, query=fused, limit=q.mmr_candidates)
        return dict(query=_mmr(q), prefetch=[candidates], **common)
    if q.sparse is not None:
        if q.phrase is not None:  # only the texts holding it (the planner's verbatim probe)
            common["query_filter"] = _with_phrase(qfilter, q.phrase)
        return dict(query=_sparse(q), using=SPARSE, search_params=idf, **common)
    if q.diversity is not None:
        return dict(query=_mmr(q), search_params=dense_params, **common)
    return dict(query=list(q.dense), search_params=dense_params, **common)


def _with_phrase(qfilter: models.Filter | None, phrase: str) -> models.Filter:
    holds = models.FieldCondition(key=TEXT_FIELD, match=models.MatchPhrase(phrase=phrase))
    return models.Filter(must=[holds] if qfilter is None else [holds, qfilter])


def _sparse(q: StoreQuery) -> models.SparseVector:
    indices, values = q.sparse
    return models.SparseVector(indices=indices, values=values)


def _mmr(q: StoreQuery) -> models.NearestQuery:
    return models.NearestQuery(
        nearest=list(q.dense), mmr=models.Mmr(diversity=q.diversity, candidates_limit=q.mmr_candidates)
    )
