import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Distance(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISTANCE_UNSPECIFIED: _ClassVar[Distance]
    DISTANCE_COSINE: _ClassVar[Distance]
    DISTANCE_DOT: _ClassVar[Distance]
    DISTANCE_EUCLID: _ClassVar[Distance]

class FieldType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIELD_TYPE_UNSPECIFIED: _ClassVar[FieldType]
    FIELD_TYPE_KEYWORD: _ClassVar[FieldType]
    FIELD_TYPE_INTEGER: _ClassVar[FieldType]
    FIELD_TYPE_FLOAT: _ClassVar[FieldType]
    FIELD_TYPE_BOOL: _ClassVar[FieldType]
    FIELD_TYPE_TEXT: _ClassVar[FieldType]

class FingerprintState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINGERPRINT_STATE_UNSPECIFIED: _ClassVar[FingerprintState]
    FINGERPRINT_STATE_MATCHES: _ClassVar[FingerprintState]
    FINGERPRINT_STATE_MISMATCH: _ClassVar[FingerprintState]
    FINGERPRINT_STATE_UNCHECKED: _ClassVar[FingerprintState]

class IndexingState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INDEXING_STATE_UNSPECIFIED: _ClassVar[IndexingState]
    INDEXING_STATE_INDEXED: _ClassVar[IndexingState]
    INDEXING_STATE_PENDING: _ClassVar[IndexingState]
    INDEXING_STATE_BUILDING: _ClassVar[IndexingState]
    INDEXING_STATE_FAILED: _ClassVar[IndexingState]

class ReadConsistency(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    READ_CONSISTENCY_UNSPECIFIED: _ClassVar[ReadConsistency]
    READ_CONSISTENCY_ONE: _ClassVar[ReadConsistency]
    READ_CONSISTENCY_MAJORITY: _ClassVar[ReadConsistency]
    READ_CONSISTENCY_QUORUM: _ClassVar[ReadConsistency]
    READ_CONSISTENCY_ALL: _ClassVar[ReadConsistency]

class Quantization(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUANTIZATION_UNSPECIFIED: _ClassVar[Quantization]
    QUANTIZATION_NONE: _ClassVar[Quantization]
    QUANTIZATION_INT8: _ClassVar[Quantization]
DISTANCE_UNSPECIFIED: Distance
DISTANCE_COSINE: Distance
DISTANCE_DOT: Distance
DISTANCE_EUCLID: Distance
FIELD_TYPE_UNSPECIFIED: FieldType
FIELD_TYPE_KEYWORD: FieldType
FIELD_TYPE_INTEGER: FieldType
FIELD_TYPE_FLOAT: FieldType
FIELD_TYPE_BOOL: FieldType
FIELD_TYPE_TEXT: FieldType
FINGERPRINT_STATE_UNSPECIFIED: FingerprintState
FINGERPRINT_STATE_MATCHES: FingerprintState
FINGERPRINT_STATE_MISMATCH: FingerprintState
FINGERPRINT_STATE_UNCHECKED: FingerprintState
INDEXING_STATE_UNSPECIFIED: IndexingState
INDEXING_STATE_INDEXED: IndexingState
INDEXING_STATE_PENDING: IndexingState
INDEXING_STATE_BUILDING: IndexingState
INDEXING_STATE_FAILED: IndexingState
READ_CONSISTENCY_UNSPECIFIED: ReadConsistency
READ_CONSISTENCY_ONE: ReadConsistency
READ_CONSISTENCY_MAJORITY: ReadConsistency
READ_CONSISTENCY_QUORUM: ReadConsistency
READ_CONSISTENCY_ALL: ReadConsistency
QUANTIZATION_UNSPECIFIED: Quantization
QUANTIZATION_NONE: Quantization
QUANTIZATION_INT8: Quantization

class IndexedField(_message.Message):
    __slots__ = ("key", "type")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    key: str
    type: FieldType
    def __init__(self, key: _Optional[str] = ..., type: _Optional[_Union[FieldType, str]] = ...) -> None: ...

class Collection(_message.Message):
    __slots__ = ("name", "dimension", "distance", "description", "indexed_fields", "vector_count", "created_at", "embedding_model", "fingerprint_state", "fingerprint_detail", "store_text", "reembedded_at", "rollback_model", "indexed_vector_count", "indexing_state", "layout")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INDEXED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    VECTOR_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_STATE_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_DETAIL_FIELD_NUMBER: _ClassVar[int]
    STORE_TEXT_FIELD_NUMBER: _ClassVar[int]
    REEMBEDDED_AT_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_MODEL_FIELD_NUMBER: _ClassVar[int]
    INDEXED_VECTOR_COUNT_FIELD_NUMBER: _ClassVar[int]
    INDEXING_STATE_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    name: str
    dimension: int
    distance: Distance
    description: str
    indexed_fields: _containers.RepeatedCompositeFieldContainer[IndexedField]
    vector_count: int
    created_at: _timestamp_pb2.Timestamp
    embedding_model: str
    fingerprint_state: FingerprintState
    fingerprint_detail: str
    store_text: bool
    reembedded_at: _timestamp_pb2.Timestamp
    rollback_model: str
    indexed_vector_count: int
    indexing_state: IndexingState
    layout: CollectionLayout
    def __init__(self, name: _Optional[str] = ..., dimension: _Optional[int] = ..., distance: _Optional[_Union[Distance, str]] = ..., description: _Optional[str] = ..., indexed_fields: _Optional[_Iterable[_Union[IndexedField, _Mapping]]] = ..., vector_count: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., embedding_model: _Optional[str] = ..., fingerprint_state: _Optional[_Union[FingerprintState, str]] = ..., fingerprint_detail: _Optional[str] = ..., store_text: _Optional[bool] = ..., reembedded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rollback_model: _Optional[str] = ..., indexed_vector_count: _Optional[int] = ..., indexing_state: _Optional[_Union[IndexingState, str]] = ..., layout: _Optional[_Union[CollectionLayout, _Mapping]] = ...) -> None: ...

class CollectionLayout(_message.Message):
    __slots__ = ("shard_number", "replication_factor", "write_consistency_factor", "read_consistency", "hnsw", "quantization", "on_disk_vectors")
    SHARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    REPLICATION_FACTOR_FIELD_NUMBER: _ClassVar[int]
    WRITE_CONSISTENCY_FACTOR_FIELD_NUMBER: _ClassVar[int]
    READ_CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    HNSW_FIELD_NUMBER: _ClassVar[int]
    QUANTIZATION_FIELD_NUMBER: _ClassVar[int]
    ON_DISK_VECTORS_FIELD_NUMBER: _ClassVar[int]
    shard_number: int
    replication_factor: int
    write_consistency_factor: int
    read_consistency: ReadConsistency
    hnsw: HnswLayout
    quantization: QuantizationLayout
    on_disk_vectors: bool
    def __init__(self, shard_number: _Optional[int] = ..., replication_factor: _Optional[int] = ..., write_consistency_factor: _Optional[int] = ..., read_consistency: _Optional[_Union[ReadConsistency, str]] = ..., hnsw: _Optional[_Union[HnswLayout, _Mapping]] = ..., quantization: _Optional[_Union[QuantizationLayout, _Mapping]] = ..., on_disk_vectors: _Optional[bool] = ...) -> None: ...

class HnswLayout(_message.Message):
    __slots__ = ("m", "ef_construct")
    M_FIELD_NUMBER: _ClassVar[int]
    EF_CONSTRUCT_FIELD_NUMBER: _ClassVar[int]
    m: int
    ef_construct: int
    def __init__(self, m: _Optional[int] = ..., ef_construct: _Optional[int] = ...) -> None: ...

class QuantizationLayout(_message.Message):
    __slots__ = ("type", "oversampling")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    OVERSAMPLING_FIELD_NUMBER: _ClassVar[int]
    type: Quantization
    oversampling: float
    def __init__(self, type: _Optional[_Union[Quantization, str]] = ..., oversampling: _Optional[float] = ...) -> None: ...

class Vector(_message.Message):
    __slots__ = ("id", "embedding", "metadata", "collection", "created_at", "text", "embedding_model", "embedded_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    EMBEDDED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    embedding: _containers.RepeatedScalarFieldContainer[float]
    metadata: _struct_pb2.Struct
    collection: str
    created_at: _timestamp_pb2.Timestamp
    text: str
    embedding_model: str
    embedded_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., embedding: _Optional[_Iterable[float]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., collection: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., text: _Optional[str] = ..., embedding_model: _Optional[str] = ..., embedded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ScoredVector(_message.Message):
    __slots__ = ("id", "score", "embedding", "metadata", "created_at", "text", "embedding_model", "embedded_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    EMBEDDED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    score: float
    embedding: _containers.RepeatedScalarFieldContainer[float]
    metadata: _struct_pb2.Struct
    created_at: _timestamp_pb2.Timestamp
    text: str
    embedding_model: str
    embedded_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., score: _Optional[float] = ..., embedding: _Optional[_Iterable[float]] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., text: _Optional[str] = ..., embedding_model: _Optional[str] = ..., embedded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
