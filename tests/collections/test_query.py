"""QueryVectors and FacetVectors through a real gateway: every query kind gives the same ids
and scores over gRPC, REST and GraphQL, ranks as its kind says, and every bad request names
its field."""

from __future__ import annotations

import grpc
import pytest

from citadel.batch.v1 import batch_service_pb2 as bpb
from citadel.batch.v1 import batch_service_pb2_grpc as batch_grpc
from citadel.server.descriptors import SERVICES
from citadel.server.methods import MethodSpec, method_specs
from citadel.vector.v1 import filter_pb2 as fpb
from citadel.vector.v1 import resources_pb2 as rpb
from citadel.vector.v1 import vector_service_pb2 as pb
from tests.collections.test_model_binding import create_bound, finished_job
from tests.support.gateway_process import GatewayProcess

SPECS: dict[str, MethodSpec] = {spec.name: spec for spec in method_specs(SERVICES)}
PROTOCOLS = ("grpc", "rest", "graphql")
DOCS = {
    "bread": ("Knead the sourdough, let it rise overnight, and bake the loaf until golden.", "food", 2019),
    "starter": ("Feed the sourdough starter flour and water every morning.", "food", 2021),
    "pasta": ("Boil the pasta in salted water and toss it with olive oil.", "food", 2020),
    "glacier": ("Glaciers carve deep valleys as the ice moves slowly downhill.", "nature", 2018),
    "tide": ("The tide rises twice a day under the pull of the moon.", "nature", 2021),
    "rates": ("The central bank raised interest rates to slow inflation.", "money", 2022),
    "bonds": ("Bond prices fall when interest rates rise.", "money", 2022),
    "err": ("Error E4012 means the pump's pressure sensor is disconnected.", "manual", 2023),
    "reset": ("Hold the reset button for ten seconds to restore factory settings.", "manual", 2023),
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    proc = GatewayProcess(tmp_path_factory.mktemp("query") / "data").start()
    stub = proc.stub()
    collection = rpb.Collection(
        name="kb",
        distance=rpb.DISTANCE_COSINE,
        embedding_model="general",
        indexed_fields=[
            rpb.IndexedField(key="topic", type=rpb.FIELD_TYPE_KEYWORD),
            rpb.IndexedField(key="title", type=rpb.FIELD_TYPE_TEXT),
        ],
    )
    stub.CreateCollection(pb.CreateCollectionRequest(collection=collection), timeout=60)
    vectors = [
        rpb.Vector(id=k, text=text, metadata={"topic": topic, "year": year, "title": f"{k} notes on {topic}"})
        for k, (text, topic, year) in DOCS.items()
    ]
    stub.UpsertVectors(pb.UpsertVectorsRequest(collection="kb", vectors=vectors), timeout=60)
    plain = rpb.Collection(name="textless", dimension=384, distance=rpb.DISTANCE_COSINE, store_text=False)
    stub.CreateCollection(pb.CreateCollectionRequest(collection=plain), timeout=60)
    yield proc
    proc.stop()


def query(protocols, collection="kb", **fields) -> dict[str, pb.QueryVectorsResponse]:
    """The same QueryVectors over every protocol; each must succeed."""
    request = pb.QueryVectorsRequest(collection=collection, **fields)
    out = {}
    for protocol in PROTOCOLS:
        outcome = getattr(protocols, protocol)(SPECS["QueryVectors"], request)
        assert outcome.code == grpc.StatusCode.OK, (protocol, outcome.message)
        out[protocol] = outcome.response
    return out


def same_everywhere(answers: dict[str, pb.QueryVectorsResponse]) -> list[tuple[str, float]]:
    ranked = {p: [(r.id, round(r.score, 4)) for r in a.results] for p, a in answers.items()}
    assert ranked["rest"] == ranked["grpc"] == ranked["graphql"], ranked
    return ranked["grpc"]


def ids(ranked) -> list[str]:
    return [i for i, _ in ranked]


def vector_of(gateway, vid: str) -> list[float]:
    return list(
        gateway.stub().GetVector(pb.GetVectorRequest(collection="kb", id=vid), timeout=60).vector.embedding
    )


def test_nearest_by_text_and_by_vector(gateway, protocols):
    by_text = same_everywhere(query(protocols, nearest=pb.NearestQuery(text="baking bread at home"), limit=3))
    assert ids(by_text)[0] == "bread"
    by_vector = same_everywhere(
        query(protocols, nearest=pb.NearestQuery(vector=vector_of(gateway, "tide")), limit=2)
    )
    assert ids(by_vector)[0] == "tide" and by_vector[0][1] == pytest.approx(1.0, abs=1e-3)


def test_keyword_finds_identifiers_dense_search_misses(protocols):
    ranked = same_everywhere(query(protocols, keyword=pb.KeywordQuery(text="E4012"), limit=3))
    assert ids(ranked) == ["err"]  # BM25 scores only texts holding the token
    stemmed = same_everywhere(query(protocols, keyword=pb.KeywordQuery(text="rising rates"), limit=5))
    assert set(ids(stemmed)[:2]) == {"rates", "bonds"}  # "rates" and "rise" as stored


@pytest.mark.parametrize("fusion", [pb.FUSION_RRF, pb.FUSION_DBSF])
def test_hybrid_fuses_dense_and_keyword(protocols, fusion):
    ranked = same_everywhere(
        query(
            protocols, hybrid=pb.HybridQuery(text="sourdough starter", fusion=fusion), limit=4, with_text=True
        )
    )
    assert ids(ranked)[0] == "starter" and "bread" in ids(ranked)
    weighted = same_everywhere(
        query(protocols, hybrid=pb.HybridQuery(text="E4012 sensor", weights=[0.1, 1.0]), limit=1)
    )
    assert ids(weighted) == ["err"]


# "pressure sensor": "worn" says both words twice in a short text (BM25 and the dense model
# both rank it first), "seal" holds them once as the exact phrase in a longer one.
PUMP_DOCS = {
    "worn": "Sensor readings drift when pressure drops; recalibrate the sensor whenever the pressure changes.",
    "seal": (
        "Replace the pressure sensor of the pump every two years, together with its seals, gaskets, "
        "filters, hoses and the valve assembly on the outlet side."
    ),
    "hose": "Coil the garden hose loosely and drain it before the first frost.",
}


@pytest.fixture(scope="module")
def pumps(gateway):
    stub = gateway.stub()
    collection = rpb.Collection(name="pumps", distance=rpb.DISTANCE_COSINE, embedding_model="general")
    stub.CreateCollection(pb.CreateCollectionRequest(collection=collection), timeout=60)
    vectors = [rpb.Vector(id=k, text=t, metadata={"kind": k}) for k, t in PUMP_DOCS.items()]
    stub.UpsertVectors(pb.UpsertVectorsRequest(collection="pumps", vectors=vectors), timeout=60)
    return "pumps"


def test_hybrid_ranks_an_exact_phrase_first(protocols, pumps):
    def hybrid(text, **fields):
        return same_everywhere(query(protocols, pumps, hybrid=pb.HybridQuery(text=text, **fields), limit=3))

    without_phrase = hybrid("pressure sensor", weights=[1, 2, 0])  # the third weight 0: two rankings
    assert ids(without_phrase)[0] == "worn"
    for fusion in (pb.FUSION_RRF, pb.FUSION_DBSF):
        assert ids(hybrid("pressure sensor", fusion=fusion))[0] == "seal", fusion
    # Case and punctuation do not matter to the phrase, the order of its words does.
    assert ids(hybrid("Pressure-Sensor"))[0] == "seal"
    assert hybrid("sensor pressure", fusion=pb.FUSION_RRF) == hybrid("sensor pressure", weights=[1, 2, 0])
    # A single word has no phrase ranking: RRF is exactly the two rankings.
    assert hybrid("pressure", fusion=pb.FUSION_RRF) == hybrid("pressure", weights=[1, 2, 0])
    # The phrase ranking keeps to the filter.
    not_seal = fpb.Filter(
        must_not=[fpb.Condition(field=fpb.FieldCondition(key="kind", match=fpb.Match(keyword="seal")))]
    )
    filtered = same_everywhere(
        query(protocols, pumps, hybrid=pb.HybridQuery(text="pressure sensor"), filter=not_seal, limit=3)
    )
    assert "seal" not in ids(filtered) and ids(filtered)[0] == "worn"


def test_unset_fusion_is_rrf_for_a_verbatim_query_and_dbsf_otherwise(protocols, pumps):
    def hybrid(text, filter=None, **fields):
        hybrid = pb.HybridQuery(text=text, **fields)
        return same_everywhere(query(protocols, pumps, hybrid=hybrid, filter=filter, limit=3))

    rrf, dbsf = pb.FUSION_RRF, pb.FUSION_DBSF
    # "seal" holds "pressure sensor" verbatim: a known-item lookup, fused by RRF with the phrase.
    assert (
        hybrid("pressure sensor")
        == hybrid("pressure sensor", fusion=rrf)
        != hybrid("pressure sensor", fusion=dbsf)
    )
    # No text holds these words in this order, or this word at all: DBSF of the two rankings.
    assert hybrid("sensor pressure") == hybrid("sensor pressure", fusion=dbsf)
    assert hybrid("sensor pressure") != hybrid("sensor pressure", fusion=rrf)
    assert hybrid("manometers") == hybrid("manometers", fusion=dbsf) != hybrid("manometers", fusion=rrf)
    # One word some text holds is its own phrase.
    assert hybrid("pressure") == hybrid("pressure", fusion=rrf) != hybrid("pressure", fusion=dbsf)
    # Weights alone mean RRF, whatever the query.
    assert hybrid("sensor pressure", weights=[1, 2]) == hybrid("sensor pressure", fusion=rrf, weights=[1, 2])
    # The probe keeps to the filter: without "seal", no text holds the phrase.
    not_seal = fpb.Filter(
        must_not=[fpb.Condition(field=fpb.FieldCondition(key="kind", match=fpb.Match(keyword="seal")))]
    )
    filtered = hybrid("pressure sensor", filter=not_seal)
    assert filtered == hybrid("pressure sensor", fusion=dbsf, filter=not_seal)
    assert filtered != hybrid("pressure sensor", fusion=rrf, filter=not_seal)


@pytest.mark.parametrize(
    "strategy",
    [
        pb.RECOMMEND_STRATEGY_AVERAGE_VECTOR,
        pb.RECOMMEND_STRATEGY_BEST_SCORE,
        pb.RECOMMEND_STRATEGY_SUM_SCORES,
    ],
)
def test_recommend_by_examples_excludes_them(protocols, strategy):
    ranked = same_everywhere(
        query(
            protocols,
            recommend=pb.RecommendQuery(positive_ids=["bread"], negative_ids=["rates"], strategy=strategy),
            limit=3,
        )
    )
    assert "bread" not in ids(ranked) and "rates" not in ids(ranked)
    assert ids(ranked)[0] in ("starter", "pasta")


def test_mmr_trades_relevance_for_variety(protocols):
    plain = same_everywhere(query(protocols, nearest=pb.NearestQuery(text="sourdough bread"), limit=3))
    varied = same_everywhere(
        query(protocols, nearest=pb.NearestQuery(text="sourdough bread"), limit=3, mmr=pb.Mmr(diversity=0.9))
    )
    assert ids(varied)[0] == ids(plain)[0] and ids(varied) != ids(plain)
    relevance_only = same_everywhere(
        query(protocols, nearest=pb.NearestQuery(text="sourdough bread"), limit=3, mmr=pb.Mmr(diversity=0.0))
    )
    assert ids(relevance_only) == ids(plain)


def test_group_by_a_metadata_field(protocols):
    answers = query(
        protocols,
        nearest=pb.NearestQuery(text="interest rates and sourdough"),
        limit=3,
        group_by=pb.GroupBy(key="topic", group_size=2),
    )
    shaped = {p: [(g.value.keyword, [r.id for r in g.results]) for g in a.groups] for p, a in answers.items()}
    assert shaped["rest"] == shaped["grpc"] == shaped["graphql"], shaped
    groups = shaped["grpc"]
    assert len(groups) == 3 and all(1 <= len(members) <= 2 for _, members in groups)
    topics = {k: DOCS[k][1] for k in DOCS}
    for value, members in groups:
        assert {topics[m] for m in members} == {value}
    assert not answers["grpc"].results


def test_full_text_filters(protocols):
    on_text = same_everywhere(
        query(
            protocols,
            nearest=pb.NearestQuery(text="kitchen"),
            limit=9,
            filter=fpb.Filter(must=[fpb.Condition(text_match=fpb.TextMatchCondition(query="Sourdough"))]),
        )
    )
    assert set(ids(on_text)) == {"bread", "starter"}
    phrase = same_everywhere(
        query(
            protocols,
            nearest=pb.NearestQuery(text="finance"),
            limit=9,
            filter=fpb.Filter(
                must=[
                    fpb.Condition(
                        field=fpb.FieldCondition(key="title", match=fpb.Match(phrase="notes on money"))
                    )
                ]
            ),
        )
    )
    assert set(ids(phrase)) == {"rates", "bonds"}


def test_facets_count_values(protocols):
    request = pb.FacetVectorsRequest(
        collection="kb",
        key="topic",
        filter=fpb.Filter(
            must_not=[fpb.Condition(field=fpb.FieldCondition(key="year", match=fpb.Match(integer=2018)))]
        ),
    )
    answers = {}
    for protocol in PROTOCOLS:
        outcome = getattr(protocols, protocol)(SPECS["FacetVectors"], request)
        assert outcome.code == grpc.StatusCode.OK, (protocol, outcome.message)
        answers[protocol] = [(h.value.keyword, h.count) for h in outcome.response.hits]
    assert answers["rest"] == answers["grpc"] == answers["graphql"]
    assert dict(answers["grpc"]) == {"food": 3, "money": 2, "manual": 2, "nature": 1}
    assert answers["grpc"][0] == ("food", 3)


BAD = [
    (dict(), "INVALID_ARGUMENT", "ranking"),
    (dict(nearest=pb.NearestQuery()), "INVALID_ARGUMENT", "nearest"),
    (dict(nearest=pb.NearestQuery(vector=[1.0, 2.0])), "INVALID_ARGUMENT", "nearest.vector"),
    (dict(keyword=pb.KeywordQuery(text="  ")), "INVALID_ARGUMENT", "keyword.text"),
    (dict(keyword=pb.KeywordQuery(text="x" * 1025)), "INVALID_ARGUMENT", "keyword.text"),
    (
        dict(hybrid=pb.HybridQuery(text="bread", fusion=pb.FUSION_DBSF, weights=[1, 1])),
        "INVALID_ARGUMENT",
        "hybrid.weights",
    ),
    (dict(hybrid=pb.HybridQuery(text="bread", weights=[1])), "INVALID_ARGUMENT", "hybrid.weights"),
    (dict(hybrid=pb.HybridQuery(text="bread", weights=[1, 1, 1, 1])), "INVALID_ARGUMENT", "2 or 3 values"),
    (dict(hybrid=pb.HybridQuery(text="bread", weights=[1, 1, -1])), "INVALID_ARGUMENT", "hybrid.weights[2]"),
    (dict(hybrid=pb.HybridQuery(text="bread", candidates=5000)), "INVALID_ARGUMENT", "hybrid.candidates"),
    (dict(recommend=pb.RecommendQuery()), "INVALID_ARGUMENT", "recommend.positive_ids"),
    (dict(recommend=pb.RecommendQuery(positive_ids=["nope"])), "NOT_FOUND", "nope"),
    (dict(keyword=pb.KeywordQuery(text="bread"), mmr=pb.Mmr(diversity=0.5)), "INVALID_ARGUMENT", "mmr"),
    (
        dict(nearest=pb.NearestQuery(text="bread"), mmr=pb.Mmr(diversity=2)),
        "INVALID_ARGUMENT",
        "mmr.diversity",
    ),
    (
        dict(nearest=pb.NearestQuery(text="bread"), mmr=pb.Mmr(candidates=5000)),
        "INVALID_ARGUMENT",
        "mmr.candidates",
    ),
    (
        dict(nearest=pb.NearestQuery(text="b"), group_by=pb.GroupBy(key="topic", group_size=101)),
        "INVALID_ARGUMENT",
        "group_by.group_size",
    ),
    (dict(nearest=pb.NearestQuery(text="b"), limit=1001), "INVALID_ARGUMENT", "limit"),
    (
        dict(
            nearest=pb.NearestQuery(text="b"),
            filter=fpb.Filter(must=[fpb.Condition(text_match=fpb.TextMatchCondition())]),
        ),
        "INVALID_ARGUMENT",
        "filter.must[0].text_match.query",
    ),
]


@pytest.mark.parametrize("fields,code,named", BAD)
def test_bad_requests_name_their_field(protocols, fields, code, named):
    for protocol in PROTOCOLS:
        outcome = getattr(protocols, protocol)(
            SPECS["QueryVectors"], pb.QueryVectorsRequest(collection="kb", **fields)
        )
        assert outcome.code.name == code and named in outcome.message, (protocol, outcome.message)


def test_keyword_search_needs_a_collection_that_keeps_text(protocols):
    request = pb.QueryVectorsRequest(collection="textless", keyword=pb.KeywordQuery(text="bread"))
    for protocol in PROTOCOLS:
        outcome = getattr(protocols, protocol)(SPECS["QueryVectors"], request)
        assert outcome.code == grpc.StatusCode.FAILED_PRECONDITION, outcome.message
        assert "'textless'" in outcome.message and "keyword" in outcome.message


def test_batch_jobs_keep_keyword_vectors(gateway):
    create_bound(gateway.stub(), "kb-batch")
    items = [bpb.BatchItem(id=k, text=text) for k, (text, _, _) in DOCS.items()]
    request = bpb.SubmitBatchJobRequest(
        collection="kb-batch", operation=bpb.OPERATION_BULK_EMBED_UPSERT, items=items
    )
    job = batch_grpc.BatchServiceStub(gateway.channel()).SubmitBatchJob(request, timeout=60).job
    assert finished_job(gateway, job.id).state == bpb.JOB_STATE_SUCCEEDED
    found = gateway.stub().QueryVectors(
        pb.QueryVectorsRequest(collection="kb-batch", keyword=pb.KeywordQuery(text="E4012")), timeout=60
    )
    assert [r.id for r in found.results] == ["err"]


@pytest.fixture(scope="module")
def twins(gateway):
    """Twenty collections' worth of equal texts: every dense and keyword score ties."""
    stub = gateway.stub()
    collection = rpb.Collection(name="twins", distance=rpb.DISTANCE_COSINE, embedding_model="general")
    stub.CreateCollection(pb.CreateCollectionRequest(collection=collection), timeout=60)
    texts = ["the sourdough loaf rises overnight"] * 12 + ["the glacier carves a valley"] * 12
    vectors = [rpb.Vector(id=f"t{i:02d}", text=t) for i, t in enumerate(texts)]
    stub.UpsertVectors(pb.UpsertVectorsRequest(collection="twins", vectors=vectors), timeout=60)
    return "twins"


@pytest.mark.parametrize("kind", ["hybrid", "keyword"])
def test_equal_scores_have_one_order_so_pages_never_repeat_or_skip(gateway, twins, kind):
    stub = gateway.stub()
    uncached = (("cache-control", "no-cache"),)

    def ranked(limit: int, offset: int = 0) -> list[tuple[str, float]]:
        ranking = {
            kind: pb.HybridQuery(text="sourdough loaf")
            if kind == "hybrid"
            else pb.KeywordQuery(text="sourdough loaf")
        }
        request = pb.QueryVectorsRequest(collection=twins, limit=limit, offset=offset, **ranking)
        reply = stub.QueryVectors(request, metadata=uncached, timeout=60)
        return [(r.id, round(r.score, 6)) for r in reply.results]

    whole = ranked(20)
    assert all(ranked(20) == whole for _ in range(10))  # the engine alone gave two orders in 20 calls
    assert sorted(i for i, _ in whole[:12]) == [f"t{i:02d}" for i in range(12)]  # the sourdough twins
    if kind == "keyword":  # equal BM25 scores, so id order (RRF scores by rank: the twins differ)
        assert [i for i, _ in whole[:12]] == [f"t{i:02d}" for i in range(12)]
    pages = [hit for offset in range(0, 20, 5) for hit in ranked(5, offset)]
    assert pages == whole
