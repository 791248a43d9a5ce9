from citadel.options.v1 import options_pb2 as _options_pb2
from citadel.vector.v1 import filter_pb2 as _filter_pb2
from citadel.vector.v1 import resources_pb2 as _resources_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Fusion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FUSION_UNSPECIFIED: _ClassVar[Fusion]
    FUSION_RRF: _ClassVar[Fusion]
    FUSION_DBSF: _ClassVar[Fusion]

class RecommendStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECOMMEND_STRATEGY_UNSPECIFIED: _ClassVar[RecommendStrategy]
    RECOMMEND_STRATEGY_AVERAGE_VECTOR: _ClassVar[RecommendStrategy]
    RECOMMEND_STRATEGY_BEST_SCORE: _ClassVar[RecommendStrategy]
    RECOMMEND_STRATEGY_SUM_SCORES: _ClassVar[RecommendStrategy]

class IntegrationPattern(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTEGRATION_PATTERN_UNSPECIFIED: _ClassVar[IntegrationPattern]
    INTEGRATION_PATTERN_REALTIME: _ClassVar[IntegrationPattern]
    INTEGRATION_PATTERN_HYBRID: _ClassVar[IntegrationPattern]
    INTEGRATION_PATTERN_BULK_ONLY: _ClassVar[IntegrationPattern]

class CircuitState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CIRCUIT_STATE_UNSPECIFIED: _ClassVar[CircuitState]
    CIRCUIT_STATE_CLOSED: _ClassVar[CircuitState]
    CIRCUIT_STATE_OPEN: _ClassVar[CircuitState]
    CIRCUIT_STATE_HALF_OPEN: _ClassVar[CircuitState]
FUSION_UNSPECIFIED: Fusion
FUSION_RRF: Fusion
FUSION_DBSF: Fusion
RECOMMEND_STRATEGY_UNSPECIFIED: RecommendStrategy
RECOMMEND_STRATEGY_AVERAGE_VECTOR: RecommendStrategy
RECOMMEND_STRATEGY_BEST_SCORE: RecommendStrategy
RECOMMEND_STRATEGY_SUM_SCORES: RecommendStrategy
INTEGRATION_PATTERN_UNSPECIFIED: IntegrationPattern
INTEGRATION_PATTERN_REALTIME: IntegrationPattern
INTEGRATION_PATTERN_HYBRID: IntegrationPattern
INTEGRATION_PATTERN_BULK_ONLY: IntegrationPattern
CIRCUIT_STATE_UNSPECIFIED: CircuitState
CIRCUIT_STATE_CLOSED: CircuitState
CIRCUIT_STATE_OPEN: CircuitState
CIRCUIT_STATE_HALF_OPEN: CircuitState

class CreateCollectionRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: _resources_pb2.Collection
    def __init__(self, collection: _Optional[_Union[_resources_pb2.Collection, _Mapping]] = ...) -> None: ...

class CreateCollectionResponse(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: _resources_pb2.Collection
    def __init__(self, collection: _Optional[_Union[_resources_pb2.Collection, _Mapping]] = ...) -> None: ...

class GetCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetCollectionResponse(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: _resources_pb2.Collection
    def __init__(self, collection: _Optional[_Union[_resources_pb2.Collection, _Mapping]] = ...) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections", "next_page_token")
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Collection]
    next_page_token: str
    def __init__(self, collections: _Optional[_Iterable[_Union[_resources_pb2.Collection, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class DeleteCollectionRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteCollectionResponse(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class InsertVectorRequest(_message.Message):
    __slots__ = ("collection", "vector")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    collection: str
    vector: _resources_pb2.Vector
    def __init__(self, collection: _Optional[str] = ..., vector: _Optional[_Union[_resources_pb2.Vector, _Mapping]] = ...) -> None: ...

class InsertVectorResponse(_message.Message):
    __slots__ = ("vector",)
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    vector: _resources_pb2.Vector
    def __init__(self, vector: _Optional[_Union[_resources_pb2.Vector, _Mapping]] = ...) -> None: ...

class UpsertVectorsRequest(_message.Message):
    __slots__ = ("collection", "vectors")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    vectors: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Vector]
    def __init__(self, collection: _Optional[str] = ..., vectors: _Optional[_Iterable[_Union[_resources_pb2.Vector, _Mapping]]] = ...) -> None: ...

class UpsertVectorsResponse(_message.Message):
    __slots__ = ("upserted_count",)
    UPSERTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    upserted_count: int
    def __init__(self, upserted_count: _Optional[int] = ...) -> None: ...

class GetVectorRequest(_message.Message):
    __slots__ = ("collection", "id")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    collection: str
    id: str
    def __init__(self, collection: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class GetVectorResponse(_message.Message):
    __slots__ = ("vector",)
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    vector: _resources_pb2.Vector
    def __init__(self, vector: _Optional[_Union[_resources_pb2.Vector, _Mapping]] = ...) -> None: ...

class VectorIds(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeleteVectorsRequest(_message.Message):
    __slots__ = ("collection", "ids", "filter", "allow_all")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ALLOW_ALL_FIELD_NUMBER: _ClassVar[int]
    collection: str
    ids: VectorIds
    filter: _filter_pb2.Filter
    allow_all: bool
    def __init__(self, collection: _Optional[str] = ..., ids: _Optional[_Union[VectorIds, _Mapping]] = ..., filter: _Optional[_Union[_filter_pb2.Filter, _Mapping]] = ..., allow_all: _Optional[bool] = ...) -> None: ...

class DeleteVectorsResponse(_message.Message):
    __slots__ = ("deleted_count",)
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    deleted_count: int
    def __init__(self, deleted_count: _Optional[int] = ...) -> None: ...

class SearchVectorsRequest(_message.Message):
    __slots__ = ("collection", "query_vector", "limit", "filter", "offset", "score_threshold", "with_embedding", "with_metadata", "exact", "query_text", "model", "with_text")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    QUERY_VECTOR_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    WITH_EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    WITH_METADATA_FIELD_NUMBER: _ClassVar[int]
    EXACT_FIELD_NUMBER: _ClassVar[int]
    QUERY_TEXT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WITH_TEXT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    query_vector: _containers.RepeatedScalarFieldContainer[float]
    limit: int
    filter: _filter_pb2.Filter
    offset: int
    score_threshold: float
    with_embedding: bool
    with_metadata: bool
    exact: bool
    query_text: str
    model: str
    with_text: bool
    def __init__(self, collection: _Optional[str] = ..., query_vector: _Optional[_Iterable[float]] = ..., limit: _Optional[int] = ..., filter: _Optional[_Union[_filter_pb2.Filter, _Mapping]] = ..., offset: _Optional[int] = ..., score_threshold: _Optional[float] = ..., with_embedding: _Optional[bool] = ..., with_metadata: _Optional[bool] = ..., exact: _Optional[bool] = ..., query_text: _Optional[str] = ..., model: _Optional[str] = ..., with_text: _Optional[bool] = ...) -> None: ...

class SearchVectorsResponse(_message.Message):
    __slots__ = ("results", "query_time_ms")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    QUERY_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[_resources_pb2.ScoredVector]
    query_time_ms: float
    def __init__(self, results: _Optional[_Iterable[_Union[_resources_pb2.ScoredVector, _Mapping]]] = ..., query_time_ms: _Optional[float] = ...) -> None: ...

class NearestQuery(_message.Message):
    __slots__ = ("vector", "text")
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    vector: _containers.RepeatedScalarFieldContainer[float]
    text: str
    def __init__(self, vector: _Optional[_Iterable[float]] = ..., text: _Optional[str] = ...) -> None: ...

class KeywordQuery(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class HybridQuery(_message.Message):
    __slots__ = ("text", "vector", "fusion", "weights", "candidates")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    text: str
    vector: _containers.RepeatedScalarFieldContainer[float]
    fusion: Fusion
    weights: _containers.RepeatedScalarFieldContainer[float]
    candidates: int
    def __init__(self, text: _Optional[str] = ..., vector: _Optional[_Iterable[float]] = ..., fusion: _Optional[_Union[Fusion, str]] = ..., weights: _Optional[_Iterable[float]] = ..., candidates: _Optional[int] = ...) -> None: ...

class RecommendQuery(_message.Message):
    __slots__ = ("positive_ids", "negative_ids", "strategy")
    POSITIVE_IDS_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_IDS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    positive_ids: _containers.RepeatedScalarFieldContainer[str]
    negative_ids: _containers.RepeatedScalarFieldContainer[str]
    strategy: RecommendStrategy
    def __init__(self, positive_ids: _Optional[_Iterable[str]] = ..., negative_ids: _Optional[_Iterable[str]] = ..., strategy: _Optional[_Union[RecommendStrategy, str]] = ...) -> None: ...

class Mmr(_message.Message):
    __slots__ = ("diversity", "candidates")
    DIVERSITY_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    diversity: float
    candidates: int
    def __init__(self, diversity: _Optional[float] = ..., candidates: _Optional[int] = ...) -> None: ...

class GroupBy(_message.Message):
    __slots__ = ("key", "group_size")
    KEY_FIELD_NUMBER: _ClassVar[int]
    GROUP_SIZE_FIELD_NUMBER: _ClassVar[int]
    key: str
    group_size: int
    def __init__(self, key: _Optional[str] = ..., group_size: _Optional[int] = ...) -> None: ...

class QueryVectorsRequest(_message.Message):
    __slots__ = ("collection", "nearest", "keyword", "hybrid", "recommend", "filter", "limit", "offset", "score_threshold", "with_metadata", "with_embedding", "with_text", "mmr", "group_by")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    NEAREST_FIELD_NUMBER: _ClassVar[int]
    KEYWORD_FIELD_NUMBER: _ClassVar[int]
    HYBRID_FIELD_NUMBER: _ClassVar[int]
    RECOMMEND_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    WITH_METADATA_FIELD_NUMBER: _ClassVar[int]
    WITH_EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    WITH_TEXT_FIELD_NUMBER: _ClassVar[int]
    MMR_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    collection: str
    nearest: NearestQuery
    keyword: KeywordQuery
    hybrid: HybridQuery
    recommend: RecommendQuery
    filter: _filter_pb2.Filter
    limit: int
    offset: int
    score_threshold: float
    with_metadata: bool
    with_embedding: bool
    with_text: bool
    mmr: Mmr
    group_by: GroupBy
    def __init__(self, collection: _Optional[str] = ..., nearest: _Optional[_Union[NearestQuery, _Mapping]] = ..., keyword: _Optional[_Union[KeywordQuery, _Mapping]] = ..., hybrid: _Optional[_Union[HybridQuery, _Mapping]] = ..., recommend: _Optional[_Union[RecommendQuery, _Mapping]] = ..., filter: _Optional[_Union[_filter_pb2.Filter, _Mapping]] = ..., limit: _Optional[int] = ..., offset: _Optional[int] = ..., score_threshold: _Optional[float] = ..., with_metadata: _Optional[bool] = ..., with_embedding: _Optional[bool] = ..., with_text: _Optional[bool] = ..., mmr: _Optional[_Union[Mmr, _Mapping]] = ..., group_by: _Optional[_Union[GroupBy, _Mapping]] = ...) -> None: ...

class FieldValue(_message.Message):
    __slots__ = ("keyword", "integer", "boolean")
    KEYWORD_FIELD_NUMBER: _ClassVar[int]
    INTEGER_FIELD_NUMBER: _ClassVar[int]
    BOOLEAN_FIELD_NUMBER: _ClassVar[int]
    keyword: str
    integer: int
    boolean: bool
    def __init__(self, keyword: _Optional[str] = ..., integer: _Optional[int] = ..., boolean: _Optional[bool] = ...) -> None: ...

class VectorGroup(_message.Message):
    __slots__ = ("value", "results")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    value: FieldValue
    results: _containers.RepeatedCompositeFieldContainer[_resources_pb2.ScoredVector]
    def __init__(self, value: _Optional[_Union[FieldValue, _Mapping]] = ..., results: _Optional[_Iterable[_Union[_resources_pb2.ScoredVector, _Mapping]]] = ...) -> None: ...

class QueryVectorsResponse(_message.Message):
    __slots__ = ("results", "groups", "query_time_ms")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    QUERY_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[_resources_pb2.ScoredVector]
    groups: _containers.RepeatedCompositeFieldContainer[VectorGroup]
    query_time_ms: float
    def __init__(self, results: _Optional[_Iterable[_Union[_resources_pb2.ScoredVector, _Mapping]]] = ..., groups: _Optional[_Iterable[_Union[VectorGroup, _Mapping]]] = ..., query_time_ms: _Optional[float] = ...) -> None: ...

class FacetVectorsRequest(_message.Message):
    __slots__ = ("collection", "key", "filter", "limit")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    key: str
    filter: _filter_pb2.Filter
    limit: int
    def __init__(self, collection: _Optional[str] = ..., key: _Optional[str] = ..., filter: _Optional[_Union[_filter_pb2.Filter, _Mapping]] = ..., limit: _Optional[int] = ...) -> None: ...

class FacetHit(_message.Message):
    __slots__ = ("value", "count")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    value: FieldValue
    count: int
    def __init__(self, value: _Optional[_Union[FieldValue, _Mapping]] = ..., count: _Optional[int] = ...) -> None: ...

class FacetVectorsResponse(_message.Message):
    __slots__ = ("hits",)
    HITS_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[FacetHit]
    def __init__(self, hits: _Optional[_Iterable[_Union[FacetHit, _Mapping]]] = ...) -> None: ...

class ScrollVectorsRequest(_message.Message):
    __slots__ = ("collection", "filter", "page_size", "page_token", "with_embedding", "with_metadata", "with_text")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    WITH_EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    WITH_METADATA_FIELD_NUMBER: _ClassVar[int]
    WITH_TEXT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    filter: _filter_pb2.Filter
    page_size: int
    page_token: str
    with_embedding: bool
    with_metadata: bool
    with_text: bool
    def __init__(self, collection: _Optional[str] = ..., filter: _Optional[_Union[_filter_pb2.Filter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., with_embedding: _Optional[bool] = ..., with_metadata: _Optional[bool] = ..., with_text: _Optional[bool] = ...) -> None: ...

class ScrollVectorsResponse(_message.Message):
    __slots__ = ("vectors", "next_page_token")
    VECTORS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    vectors: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Vector]
    next_page_token: str
    def __init__(self, vectors: _Optional[_Iterable[_Union[_resources_pb2.Vector, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CountVectorsRequest(_message.Message):
    __slots__ = ("collection", "filter")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    collection: str
    filter: _filter_pb2.Filter
    def __init__(self, collection: _Optional[str] = ..., filter: _Optional[_Union[_filter_pb2.Filter, _Mapping]] = ...) -> None: ...

class CountVectorsResponse(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class GenerateEmbeddingRequest(_message.Message):
    __slots__ = ("text", "model", "normalize", "texts", "urgent")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    NORMALIZE_FIELD_NUMBER: _ClassVar[int]
    TEXTS_FIELD_NUMBER: _ClassVar[int]
    URGENT_FIELD_NUMBER: _ClassVar[int]
    text: str
    model: str
    normalize: bool
    texts: _containers.RepeatedScalarFieldContainer[str]
    urgent: bool
    def __init__(self, text: _Optional[str] = ..., model: _Optional[str] = ..., normalize: _Optional[bool] = ..., texts: _Optional[_Iterable[str]] = ..., urgent: _Optional[bool] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class GenerateEmbeddingResponse(_message.Message):
    __slots__ = ("embedding", "model", "dimensions", "processing_time_ms", "embeddings", "job_id")
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    PROCESSING_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    embedding: _containers.RepeatedScalarFieldContainer[float]
    model: str
    dimensions: int
    processing_time_ms: float
    embeddings: _containers.RepeatedCompositeFieldContainer[Embedding]
    job_id: str
    def __init__(self, embedding: _Optional[_Iterable[float]] = ..., model: _Optional[str] = ..., dimensions: _Optional[int] = ..., processing_time_ms: _Optional[float] = ..., embeddings: _Optional[_Iterable[_Union[Embedding, _Mapping]]] = ..., job_id: _Optional[str] = ...) -> None: ...

class ModelBackend(_message.Message):
    __slots__ = ("id", "provider", "url", "weight", "max_concurrency", "in_flight", "healthy", "ejected", "circuit", "latency_ewma_ms", "consistent", "last_error")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    EJECTED_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_EWMA_MS_FIELD_NUMBER: _ClassVar[int]
    CONSISTENT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    provider: str
    url: str
    weight: int
    max_concurrency: int
    in_flight: int
    healthy: bool
    ejected: bool
    circuit: CircuitState
    latency_ewma_ms: float
    consistent: bool
    last_error: str
    def __init__(self, id: _Optional[str] = ..., provider: _Optional[str] = ..., url: _Optional[str] = ..., weight: _Optional[int] = ..., max_concurrency: _Optional[int] = ..., in_flight: _Optional[int] = ..., healthy: _Optional[bool] = ..., ejected: _Optional[bool] = ..., circuit: _Optional[_Union[CircuitState, str]] = ..., latency_ewma_ms: _Optional[float] = ..., consistent: _Optional[bool] = ..., last_error: _Optional[str] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("name", "pattern", "dimensions", "strategy", "backends")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    pattern: IntegrationPattern
    dimensions: int
    strategy: str
    backends: _containers.RepeatedCompositeFieldContainer[ModelBackend]
    def __init__(self, name: _Optional[str] = ..., pattern: _Optional[_Union[IntegrationPattern, str]] = ..., dimensions: _Optional[int] = ..., strategy: _Optional[str] = ..., backends: _Optional[_Iterable[_Union[ModelBackend, _Mapping]]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "default_model")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    default_model: str
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ..., default_model: _Optional[str] = ...) -> None: ...
