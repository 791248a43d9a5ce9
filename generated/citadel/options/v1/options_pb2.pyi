from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_READER: _ClassVar[Role]
    ROLE_WRITER: _ClassVar[Role]
    ROLE_ADMIN: _ClassVar[Role]

class CacheKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_KIND_UNSPECIFIED: _ClassVar[CacheKind]
    CACHE_KIND_EMBEDDING: _ClassVar[CacheKind]
    CACHE_KIND_SEARCH: _ClassVar[CacheKind]
    CACHE_KIND_METADATA: _ClassVar[CacheKind]
    CACHE_KIND_HEALTH: _ClassVar[CacheKind]

class GraphqlOperation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GRAPHQL_OPERATION_UNSPECIFIED: _ClassVar[GraphqlOperation]
    GRAPHQL_OPERATION_QUERY: _ClassVar[GraphqlOperation]
    GRAPHQL_OPERATION_MUTATION: _ClassVar[GraphqlOperation]
    GRAPHQL_OPERATION_SUBSCRIPTION: _ClassVar[GraphqlOperation]
    GRAPHQL_OPERATION_HIDDEN: _ClassVar[GraphqlOperation]
ROLE_UNSPECIFIED: Role
ROLE_READER: Role
ROLE_WRITER: Role
ROLE_ADMIN: Role
CACHE_KIND_UNSPECIFIED: CacheKind
CACHE_KIND_EMBEDDING: CacheKind
CACHE_KIND_SEARCH: CacheKind
CACHE_KIND_METADATA: CacheKind
CACHE_KIND_HEALTH: CacheKind
GRAPHQL_OPERATION_UNSPECIFIED: GraphqlOperation
GRAPHQL_OPERATION_QUERY: GraphqlOperation
GRAPHQL_OPERATION_MUTATION: GraphqlOperation
GRAPHQL_OPERATION_SUBSCRIPTION: GraphqlOperation
GRAPHQL_OPERATION_HIDDEN: GraphqlOperation
ACCESS_FIELD_NUMBER: _ClassVar[int]
access: _descriptor.FieldDescriptor
CACHE_FIELD_NUMBER: _ClassVar[int]
cache: _descriptor.FieldDescriptor
GRAPHQL_FIELD_NUMBER: _ClassVar[int]
graphql: _descriptor.FieldDescriptor
RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
rate_limit: _descriptor.FieldDescriptor

class AccessPolicy(_message.Message):
    __slots__ = ("role", "collection_field")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_FIELD_NUMBER: _ClassVar[int]
    role: Role
    collection_field: str
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., collection_field: _Optional[str] = ...) -> None: ...

class CachePolicy(_message.Message):
    __slots__ = ("kind", "ttl_seconds", "invalidates_collection", "model_field")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    INVALIDATES_COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_FIELD_NUMBER: _ClassVar[int]
    kind: CacheKind
    ttl_seconds: int
    invalidates_collection: bool
    model_field: str
    def __init__(self, kind: _Optional[_Union[CacheKind, str]] = ..., ttl_seconds: _Optional[int] = ..., invalidates_collection: _Optional[bool] = ..., model_field: _Optional[str] = ...) -> None: ...

class GraphqlPolicy(_message.Message):
    __slots__ = ("operation", "field")
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    operation: GraphqlOperation
    field: str
    def __init__(self, operation: _Optional[_Union[GraphqlOperation, str]] = ..., field: _Optional[str] = ...) -> None: ...

class RateLimitPolicy(_message.Message):
    __slots__ = ("cost_field",)
    COST_FIELD_FIELD_NUMBER: _ClassVar[int]
    cost_field: str
    def __init__(self, cost_field: _Optional[str] = ...) -> None: ...
