"""QueryVectors requests checked and turned into a StoreQuery, and results grouped.

Every bound is checked, naming its field, before any model call or store read; texts are
embedded (the collection's model) and keyword queries tokenised (store/keywords.py) only
once the whole request is valid. Grouping is done here, the same for both engines: the store
ranks a pool of candidates, the first `group_size` of each value of the key are kept, and
groups come in the order of their best result.

A hybrid query that leaves `fusion` (and `weights`) unset has its fusion chosen per query
(`fetch`): a query some stored text holds verbatim is a known-item lookup (an identifier, a
quoted sentence, a name), fused by RRF with the exact-phrase ranking; a query no text holds is
in the caller's own words, fused by DBSF of the dense and keyword rankings, which ranks
paraphrases better (BENCHMARKS.md, "query quality").
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence

import grpc

from citadel.server.errors import ApiError, invalid, not_found
from citadel.server.servicers import validation as check
from citadel.server.store import keywords
from citadel.server.store.base import CollectionSpec, ScoredPoint, StoreQuery
from citadel.vector.v1 import filter_pb2
from citadel.vector.v1 import vector_service_pb2 as pb

MAX_CANDIDATES = 1000
MAX_EXAMPLES = 64
MAX_GROUP_SIZE = 100
# Fused (RRF) and BM25 scores tie often (RRF: a dense-only first place, w/(k+1), equals a
# keyword-only place further down), and the engine orders equal scores differently from one
# call to the next: a page could then repeat or skip a result of the page before. Those
# rankings are ordered here, score then id, over this many results past the page, so a tie at
# the page's edge is settled the same way every time.
TIE_MARGIN = 32
_SCORE_DIGITS = 6  # scores equal to this many decimals are a tie (sums differ in the last bits)
_STRATEGIES = {
    pb.RECOMMEND_STRATEGY_UNSPECIFIED: "average_vector",
    pb.RECOMMEND_STRATEGY_AVERAGE_VECTOR: "average_vector",
    pb.RECOMMEND_STRATEGY_BEST_SCORE: "best_score",
    pb.RECOMMEND_STRATEGY_SUM_SCORES: "sum_scores",
}
# Dense and keyword weights of RRF when the caller gives none: keyword counts double. A hybrid
# query of two or more words also fuses a third ranking, the keyword ranking of the texts
# holding it as an exact phrase, weighted by default as much as the other two together: a
# verbatim hit (an identifier, a quoted sentence, a product name) comes first. On
# bench/query_quality.py's labelled set (BENCHMARKS.md, "query quality") the phrase ranking
# took the mixed set's MRR@10 from 0.763 to 0.831; equal weights with it, 0.829. With fusion
# unset, a query no text holds verbatim is fused by DBSF instead (module docstring): on that
# set's paraphrase queries without a verbatim hit DBSF gave 0.696 against RRF's 0.681.
DEFAULT_RRF_WEIGHTS = (1.0, 2.0)
# Words as the stored text's index splits them (runs of letters and digits): a phrase needs two.
_WORD = re.compile(r"[^\W_]+")
_FUSIONS = {pb.FUSION_RRF: "rrf", pb.FUSION_DBSF: "dbsf"}


@dataclasses.dataclass(frozen=True)
class Parts:
    """What planning needs from the servicer."""

    embed: Callable[[str, str], Awaitable[list[float]]]  # (field, text) -> the collection's vector
    vectors: Callable[[list[str]], Awaitable[dict[str, list[float]]]]  # stored vectors by id
    visible_name: str


@dataclasses.dataclass(frozen=True)
class Planned:
    query: StoreQuery
    limit: int  # results, or groups with group_by
    offset: int
    group_by: str | None = None
    group_size: int = 0
    with_metadata: bool = False  # what the caller asked (grouping reads metadata anyway)
    # Hybrid and keyword rankings: the store was asked from the first result on, and `ordered`
    # puts them in their one order and cuts the page.
    settles_ties: bool = False
    # Hybrid with its fusion chosen per query: `query` is the known-item form, asked when
    # this probe finds a text holding the query verbatim.
    choice: FusionChoice | None = None


@dataclasses.dataclass(frozen=True)
class FusionChoice:
    probe: StoreQuery  # keyword, limit 1, over the texts holding the query text as a phrase
    in_own_words: StoreQuery  # asked when the probe finds nothing: DBSF of dense and keyword


async def plan(request: pb.QueryVectorsRequest, spec: CollectionSpec, parts: Parts) -> Planned:
    limit = check.bounded("limit", request.limit, 10, check.MAX_LIMIT)
    offset = request.offset
    if offset > check.MAX_OFFSET:
        raise invalid("offset", f"must be at most {check.MAX_OFFSET}, got {offset}")
    threshold = None
    if request.HasField("score_threshold"):
        threshold = check.finite_number("score_threshold", request.score_threshold)
    user_filter = None
    if request.HasField("filter"):
        check.filter_("filter", request.filter)
        user_filter = request.filter
    group_by, group_size = None, 0
    if request.HasField("group_by"):
        group_by = check.metadata_path("group_by.key", request.group_by.key)
        group_size = check.bounded("group_by.group_size", request.group_by.group_size, 3, MAX_GROUP_SIZE)
    pool = limit + offset
    if group_by is not None:  # candidates enough for the groups asked for, within the store's bound
        pool = min(MAX_CANDIDATES, max(100, pool * group_size * 4))
    kind = request.WhichOneof("ranking")
    if kind is None:
        raise invalid("ranking", "set one of nearest, keyword, hybrid, recommend")
    diversity, mmr_candidates = _mmr(request, kind, pool)
    # MMR orders by diversity, not by score: its order is its own.
    settles_ties = kind in ("hybrid", "keyword") and diversity is None
    if group_by is not None:
        asked, skipped = pool, 0
    elif settles_ties:
        asked, skipped = limit + offset + TIE_MARGIN, 0
    else:
        asked, skipped = limit, offset
    base = StoreQuery(
        limit=asked,
        offset=skipped,
        filter=user_filter,
        score_threshold=threshold,
        with_vector=request.with_embedding,
        with_metadata=request.with_metadata or group_by is not None,
        diversity=diversity,
        mmr_candidates=mmr_candidates,
    )
    choice = None
    if kind == "nearest":
        query = await _nearest(request.nearest, spec, parts, base)
    elif kind == "keyword":
        _require_keywords(spec, parts.visible_name, "keyword")
        query = dataclasses.replace(base, sparse=_keyword_vector("keyword.text", request.keyword.text))
    elif kind == "hybrid":
        query, choice = await _hybrid(request.hybrid, spec, parts, base, pool)
    else:
        query = await _recommend(request.recommend, spec, parts, base)
    return Planned(query, limit, offset, group_by, group_size, request.with_metadata, settles_ties, choice)


async def fetch(
    planned: Planned, store_query: Callable[[StoreQuery], Awaitable[Sequence[ScoredPoint]]]
) -> Sequence[ScoredPoint]:
    """The store's hits for a planned query: for a hybrid query whose fusion is chosen per
    query, first one keyword probe (limit 1, within the filter) for a text holding the query
    text as an exact phrase, then the form that fits."""
    if planned.choice is None:
        return await store_query(planned.query)
    verbatim = await store_query(planned.choice.probe)
    return await store_query(planned.query if verbatim else planned.choice.in_own_words)


def ordered(hits: Sequence[ScoredPoint], planned: Planned) -> Sequence[ScoredPoint]:
    """The hits in the one order a query has: for hybrid and keyword rankings by score, equal
    scores by id, and cut to the page (grouping cuts its own); others as the store gave them."""
    if not planned.settles_ties:
        return hits
    hits = sorted(hits, key=lambda h: (-round(h.score, _SCORE_DIGITS), h.point.id))
    if planned.group_by is not None:
        return hits
    return hits[planned.offset : planned.offset + planned.limit]


def groups(
    hits: Sequence[ScoredPoint], planned: Planned
) -> Iterator[tuple[str | int | bool, list[ScoredPoint]]]:
    """The hits grouped by the group_by field's value (hits without a keyword, integer or
    boolean value there are left out), groups in the order of their best hit, after `offset`."""
    found: dict[tuple[type, object], tuple[object, list[ScoredPoint]]] = {}
    for hit in hits:
        value = _lookup(hit.point.metadata or {}, planned.group_by)
        if not isinstance(value, (str, int, bool)):
            continue
        _, members = found.setdefault((type(value), value), (value, []))
        if len(members) < planned.group_size:
            members.append(hit)
    chosen = list(found.values())[planned.offset : planned.offset + planned.limit]
    for value, members in chosen:
        if not planned.with_metadata:
            for hit in members:
                hit.point.metadata = None
        yield value, members


# -- kinds ----------------------------------------------------------------------------------


async def _nearest(q: pb.NearestQuery, spec: CollectionSpec, parts: Parts, base: StoreQuery) -> StoreQuery:
    if bool(q.vector) == bool(q.text):
        raise invalid("nearest", "set vector or text (exactly one)")
    if q.vector:
        return dataclasses.replace(
            base, dense=check.embedding_values("nearest.vector", q.vector, spec.dimension, spec.name)
        )
    return dataclasses.replace(base, dense=await parts.embed("nearest.text", q.text))


async def _hybrid(
    q: pb.HybridQuery, spec: CollectionSpec, parts: Parts, base: StoreQuery, pool: int
) -> tuple[StoreQuery, FusionChoice | None]:
    """The hybrid query (with an explicit fusion or weights, the one asked; else the known-item
    form) and, when the fusion is chosen per query, the probe and the other form."""
    _require_keywords(spec, parts.visible_name, "hybrid")
    sparse = _keyword_vector("hybrid.text", q.text)
    if q.fusion not in _FUSIONS and q.fusion != pb.FUSION_UNSPECIFIED:
        raise invalid("hybrid.fusion", "must be FUSION_UNSPECIFIED, FUSION_RRF or FUSION_DBSF")
    per_query = q.fusion == pb.FUSION_UNSPECIFIED and not q.weights  # weights alone mean RRF
    fusion = _FUSIONS.get(q.fusion, "rrf")
    weights = DEFAULT_RRF_WEIGHTS if fusion == "rrf" else None
    if q.weights:
        if fusion != "rrf":
            raise invalid("hybrid.weights", "apply to FUSION_RRF only")
        if len(q.weights) not in (2, 3):
            raise invalid(
                "hybrid.weights",
                f"must hold 2 or 3 values (dense, keyword[, exact phrase]), got {len(q.weights)}",
            )
        for i, w in enumerate(q.weights):
            if not math.isfinite(w) or w < 0:
                raise invalid(f"hybrid.weights[{i}]", f"must be a finite number ≥ 0, got {w}")
        weights = tuple(float(w) for w in q.weights)
    phrase = q.text if len(_WORD.findall(q.text)) >= 2 else None
    if weights is not None:
        dense_weight, keyword_weight, *given = weights
        phrase_weight = given[0] if given else dense_weight + keyword_weight
        if phrase_weight == 0:
            phrase = None  # the caller turned it off: no third ranking to compute
        weights = (dense_weight, keyword_weight) + ((phrase_weight,) if phrase is not None else ())
    candidates = q.candidates or min(MAX_CANDIDATES, max(50, 4 * pool))
    if candidates > MAX_CANDIDATES:
        raise invalid("hybrid.candidates", f"must be at most {MAX_CANDIDATES}, got {candidates}")
    candidates = max(candidates, min(pool, MAX_CANDIDATES))
    if q.vector:
        dense = check.embedding_values("hybrid.vector", q.vector, spec.dimension, spec.name)
    else:
        dense = await parts.embed("hybrid.text", q.text)
    query = dataclasses.replace(
        base, dense=dense, sparse=sparse, fusion=fusion, weights=weights, candidates=candidates, phrase=phrase
    )
    if not per_query:
        return query, None
    # One word is its own phrase here: the probe asks whether any text holds it as a word.
    probe = StoreQuery(limit=1, sparse=sparse, phrase=q.text, filter=base.filter)
    in_own_words = dataclasses.replace(query, fusion="dbsf", weights=None, phrase=None)
    return query, FusionChoice(probe, in_own_words)


async def _recommend(
    q: pb.RecommendQuery, spec: CollectionSpec, parts: Parts, base: StoreQuery
) -> StoreQuery:
    if not q.positive_ids:
        raise invalid("recommend.positive_ids", "must list at least one id")
    for field, ids in (
        ("recommend.positive_ids", q.positive_ids),
        ("recommend.negative_ids", q.negative_ids),
    ):
        if len(ids) > MAX_EXAMPLES:
            raise invalid(field, f"lists {len(ids)} ids; at most {MAX_EXAMPLES}")
        for j, vid in enumerate(ids):
            check.vector_id(f"{field}[{j}]", vid)
    if q.strategy not in _STRATEGIES:
        raise invalid("recommend.strategy", "must be one of the RecommendStrategy values")
    examples = list(dict.fromkeys([*q.positive_ids, *q.negative_ids]))
    stored = await parts.vectors(examples)
    missing = [i for i in examples if i not in stored]
    if missing:
        raise not_found(f"recommend: vector {missing[0]!r} in collection {parts.visible_name!r}")
    positives = [stored[i] for i in q.positive_ids]
    negatives = [stored[i] for i in q.negative_ids]
    # The examples themselves are never recommended.
    excluded = filter_pb2.Condition(has_id=filter_pb2.HasIdCondition(ids=examples))
    combined = filter_pb2.Filter(must_not=[excluded])
    if base.filter is not None:
        combined.must.add(filter=base.filter)
    base = dataclasses.replace(base, filter=combined)
    strategy = _STRATEGIES[q.strategy]
    if strategy == "average_vector":  # Qdrant's: the positives' mean, pushed off the negatives'
        mean = [sum(c) / len(positives) for c in zip(*positives, strict=True)]
        if negatives:
            away = [sum(c) / len(negatives) for c in zip(*negatives, strict=True)]
            mean = [m + (m - a) for m, a in zip(mean, away, strict=True)]
        return dataclasses.replace(base, dense=mean)
    return dataclasses.replace(
        base, positives=tuple(positives), negatives=tuple(negatives), strategy=strategy
    )


# -- helpers --------------------------------------------------------------------------------


def _mmr(request: pb.QueryVectorsRequest, kind: str, pool: int) -> tuple[float | None, int]:
    if not request.HasField("mmr"):
        return None, 0
    if kind not in ("nearest", "hybrid"):
        raise invalid("mmr", "applies to nearest and hybrid queries")
    diversity = request.mmr.diversity
    if not math.isfinite(diversity) or not 0 <= diversity <= 1:
        raise invalid("mmr.diversity", f"must be between 0 and 1, got {diversity}")
    candidates = request.mmr.candidates or min(MAX_CANDIDATES, 10 * pool)
    if candidates > MAX_CANDIDATES:
        raise invalid("mmr.candidates", f"must be at most {MAX_CANDIDATES}, got {candidates}")
    return float(diversity), max(candidates, min(pool, MAX_CANDIDATES))  # at least what is returned


def _require_keywords(spec: CollectionSpec, visible_name: str, field: str) -> None:
    if not spec.keywords:
        error = keywords.no_keywords(visible_name)
        raise ApiError(grpc.StatusCode.FAILED_PRECONDITION, f"{field}: {error.message}")


def _keyword_vector(field: str, text: str) -> tuple[list[int], list[float]]:
    # Only stopwords or punctuation make an empty vector, which matches nothing: no results.
    return keywords.query(check.words(field, text))


def _lookup(metadata: dict, path: str):
    value: object = metadata
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value
