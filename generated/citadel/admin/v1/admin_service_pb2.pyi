import datetime

from citadel.options.v1 import options_pb2 as _options_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ComponentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPONENT_STATE_UNSPECIFIED: _ClassVar[ComponentState]
    COMPONENT_STATE_STOPPED: _ClassVar[ComponentState]
    COMPONENT_STATE_STARTING: _ClassVar[ComponentState]
    COMPONENT_STATE_RUNNING: _ClassVar[ComponentState]
    COMPONENT_STATE_STOPPING: _ClassVar[ComponentState]
    COMPONENT_STATE_FAILED: _ClassVar[ComponentState]
    COMPONENT_STATE_DEGRADED: _ClassVar[ComponentState]
    COMPONENT_STATE_UNAVAILABLE: _ClassVar[ComponentState]
COMPONENT_STATE_UNSPECIFIED: ComponentState
COMPONENT_STATE_STOPPED: ComponentState
COMPONENT_STATE_STARTING: ComponentState
COMPONENT_STATE_RUNNING: ComponentState
COMPONENT_STATE_STOPPING: ComponentState
COMPONENT_STATE_FAILED: ComponentState
COMPONENT_STATE_DEGRADED: ComponentState
COMPONENT_STATE_UNAVAILABLE: ComponentState

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

class GetServiceStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ComponentStatus(_message.Message):
    __slots__ = ("name", "state", "since", "last_error", "detail")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: ComponentState
    since: _timestamp_pb2.Timestamp
    last_error: str
    detail: str
    def __init__(self, name: _Optional[str] = ..., state: _Optional[_Union[ComponentState, str]] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class GetServiceStatusResponse(_message.Message):
    __slots__ = ("components", "ready", "uptime_seconds", "version", "worker", "workers")
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    components: _containers.RepeatedCompositeFieldContainer[ComponentStatus]
    ready: bool
    uptime_seconds: float
    version: str
    worker: int
    workers: int
    def __init__(self, components: _Optional[_Iterable[_Union[ComponentStatus, _Mapping]]] = ..., ready: _Optional[bool] = ..., uptime_seconds: _Optional[float] = ..., version: _Optional[str] = ..., worker: _Optional[int] = ..., workers: _Optional[int] = ...) -> None: ...
