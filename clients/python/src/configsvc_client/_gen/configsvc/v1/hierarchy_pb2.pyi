from configsvc_client._gen.configsvc.v1 import config_pb2 as _config_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DiffMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIFF_MODE_UNSPECIFIED: _ClassVar[DiffMode]
    DIFF_MODE_RESOLVED: _ClassVar[DiffMode]
    DIFF_MODE_RAW: _ClassVar[DiffMode]
DIFF_MODE_UNSPECIFIED: DiffMode
DIFF_MODE_RESOLVED: DiffMode
DIFF_MODE_RAW: DiffMode

class PromoteRequest(_message.Message):
    __slots__ = ("tenant", "service", "source_environment", "target_environment", "keys", "dry_run", "reason")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    TARGET_ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    service: str
    source_environment: str
    target_environment: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    dry_run: bool
    reason: str
    def __init__(self, tenant: _Optional[str] = ..., service: _Optional[str] = ..., source_environment: _Optional[str] = ..., target_environment: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ..., dry_run: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class PromoteResponse(_message.Message):
    __slots__ = ("diff", "entries", "keys", "revision")
    DIFF_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    diff: _containers.RepeatedCompositeFieldContainer[DiffRow]
    entries: _containers.RepeatedCompositeFieldContainer[_config_pb2.ConfigEntry]
    keys: _containers.RepeatedScalarFieldContainer[str]
    revision: int
    def __init__(self, diff: _Optional[_Iterable[_Union[DiffRow, _Mapping]]] = ..., entries: _Optional[_Iterable[_Union[_config_pb2.ConfigEntry, _Mapping]]] = ..., keys: _Optional[_Iterable[str]] = ..., revision: _Optional[int] = ...) -> None: ...

class DiffSide(_message.Message):
    __slots__ = ("environment", "service", "revision")
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    environment: str
    service: str
    revision: int
    def __init__(self, environment: _Optional[str] = ..., service: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class DiffRequest(_message.Message):
    __slots__ = ("tenant", "left", "right", "mode")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    LEFT_FIELD_NUMBER: _ClassVar[int]
    RIGHT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    left: DiffSide
    right: DiffSide
    mode: DiffMode
    def __init__(self, tenant: _Optional[str] = ..., left: _Optional[_Union[DiffSide, _Mapping]] = ..., right: _Optional[_Union[DiffSide, _Mapping]] = ..., mode: _Optional[_Union[DiffMode, str]] = ...) -> None: ...

class DiffRow(_message.Message):
    __slots__ = ("path", "left", "right", "left_provenance", "right_provenance")
    PATH_FIELD_NUMBER: _ClassVar[int]
    LEFT_FIELD_NUMBER: _ClassVar[int]
    RIGHT_FIELD_NUMBER: _ClassVar[int]
    LEFT_PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    RIGHT_PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    path: str
    left: str
    right: str
    left_provenance: _config_pb2.Provenance
    right_provenance: _config_pb2.Provenance
    def __init__(self, path: _Optional[str] = ..., left: _Optional[str] = ..., right: _Optional[str] = ..., left_provenance: _Optional[_Union[_config_pb2.Provenance, _Mapping]] = ..., right_provenance: _Optional[_Union[_config_pb2.Provenance, _Mapping]] = ...) -> None: ...

class DiffResponse(_message.Message):
    __slots__ = ("rows", "left_revision", "right_revision")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    LEFT_REVISION_FIELD_NUMBER: _ClassVar[int]
    RIGHT_REVISION_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[DiffRow]
    left_revision: int
    right_revision: int
    def __init__(self, rows: _Optional[_Iterable[_Union[DiffRow, _Mapping]]] = ..., left_revision: _Optional[int] = ..., right_revision: _Optional[int] = ...) -> None: ...
