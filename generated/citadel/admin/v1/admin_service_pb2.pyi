from citadel.options.v1 import options_pb2 as _options_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetCacheStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MethodCacheStats(_message.Message):
    __slots__ = ("method", "hits", "misses", "hit_rate", "coalesced")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    COALESCED_FIELD_NUMBER: _ClassVar[int]
    method: str
    hits: int
    misses: int
    hit_rate: float
    coalesced: int
    def __init__(self, method: _Optional[str] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ..., hit_rate: _Optional[float] = ..., coalesced: _Optional[int] = ...) -> None: ...

class GetCacheStatsResponse(_message.Message):
    __slots__ = ("backend", "methods", "hits", "misses", "hit_rate", "entries", "bytes", "backend_errors")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    HIT_RATE_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    BACKEND_ERRORS_FIELD_NUMBER: _ClassVar[int]
    backend: str
    methods: _containers.RepeatedCompositeFieldContainer[MethodCacheStats]
    hits: int
    misses: int
    hit_rate: float
    entries: int
    bytes: int
    backend_errors: int
    def __init__(self, backend: _Optional[str] = ..., methods: _Optional[_Iterable[_Union[MethodCacheStats, _Mapping]]] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ..., hit_rate: _Optional[float] = ..., entries: _Optional[int] = ..., bytes: _Optional[int] = ..., backend_errors: _Optional[int] = ...) -> None: ...

class FlushCacheRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FlushCacheResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
