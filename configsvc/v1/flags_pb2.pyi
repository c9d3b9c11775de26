import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Bucketing(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUCKETING_UNSPECIFIED: _ClassVar[Bucketing]
    BUCKETING_CURRENT: _ClassVar[Bucketing]
    BUCKETING_LEGACY: _ClassVar[Bucketing]
BUCKETING_UNSPECIFIED: Bucketing
BUCKETING_CURRENT: Bucketing
BUCKETING_LEGACY: Bucketing

class FlagSetRef(_message.Message):
    __slots__ = ("tenant", "environment")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    environment: str
    def __init__(self, tenant: _Optional[str] = ..., environment: _Optional[str] = ...) -> None: ...

class FlagSet(_message.Message):
    __slots__ = ("ref", "definition", "version", "revision", "bucketing", "updated_by", "reason", "update_time", "deleted")
    REF_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    BUCKETING_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    ref: FlagSetRef
    definition: str
    version: int
    revision: int
    bucketing: Bucketing
    updated_by: str
    reason: str
    update_time: _timestamp_pb2.Timestamp
    deleted: bool
    def __init__(self, ref: _Optional[_Union[FlagSetRef, _Mapping]] = ..., definition: _Optional[str] = ..., version: _Optional[int] = ..., revision: _Optional[int] = ..., bucketing: _Optional[_Union[Bucketing, str]] = ..., updated_by: _Optional[str] = ..., reason: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., deleted: _Optional[bool] = ...) -> None: ...

class PutFlagSetRequest(_message.Message):
    __slots__ = ("ref", "definition", "bucketing", "expected_revision", "reason")
    REF_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    BUCKETING_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ref: FlagSetRef
    definition: str
    bucketing: Bucketing
    expected_revision: int
    reason: str
    def __init__(self, ref: _Optional[_Union[FlagSetRef, _Mapping]] = ..., definition: _Optional[str] = ..., bucketing: _Optional[_Union[Bucketing, str]] = ..., expected_revision: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class PutFlagSetResponse(_message.Message):
    __slots__ = ("flag_set",)
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    flag_set: FlagSet
    def __init__(self, flag_set: _Optional[_Union[FlagSet, _Mapping]] = ...) -> None: ...

class GetFlagSetRequest(_message.Message):
    __slots__ = ("ref",)
    REF_FIELD_NUMBER: _ClassVar[int]
    ref: FlagSetRef
    def __init__(self, ref: _Optional[_Union[FlagSetRef, _Mapping]] = ...) -> None: ...

class GetFlagSetResponse(_message.Message):
    __slots__ = ("flag_set",)
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    flag_set: FlagSet
    def __init__(self, flag_set: _Optional[_Union[FlagSet, _Mapping]] = ...) -> None: ...

class DeleteFlagSetRequest(_message.Message):
    __slots__ = ("ref", "expected_revision", "reason")
    REF_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ref: FlagSetRef
    expected_revision: int
    reason: str
    def __init__(self, ref: _Optional[_Union[FlagSetRef, _Mapping]] = ..., expected_revision: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class DeleteFlagSetResponse(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: int
    def __init__(self, revision: _Optional[int] = ...) -> None: ...

class PutFlagRequest(_message.Message):
    __slots__ = ("ref", "flag_key", "definition", "expected_revision", "reason")
    REF_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ref: FlagSetRef
    flag_key: str
    definition: str
    expected_revision: int
    reason: str
    def __init__(self, ref: _Optional[_Union[FlagSetRef, _Mapping]] = ..., flag_key: _Optional[str] = ..., definition: _Optional[str] = ..., expected_revision: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class PutFlagResponse(_message.Message):
    __slots__ = ("flag_set",)
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    flag_set: FlagSet
    def __init__(self, flag_set: _Optional[_Union[FlagSet, _Mapping]] = ...) -> None: ...

class DeleteFlagRequest(_message.Message):
    __slots__ = ("ref", "flag_key", "expected_revision", "reason")
    REF_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ref: FlagSetRef
    flag_key: str
    expected_revision: int
    reason: str
    def __init__(self, ref: _Optional[_Union[FlagSetRef, _Mapping]] = ..., flag_key: _Optional[str] = ..., expected_revision: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class DeleteFlagResponse(_message.Message):
    __slots__ = ("flag_set",)
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    flag_set: FlagSet
    def __init__(self, flag_set: _Optional[_Union[FlagSet, _Mapping]] = ...) -> None: ...

class SetFlagStateRequest(_message.Message):
    __slots__ = ("ref", "flag_key", "enabled", "expected_revision", "reason")
    REF_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ref: FlagSetRef
    flag_key: str
    enabled: bool
    expected_revision: int
    reason: str
    def __init__(self, ref: _Optional[_Union[FlagSetRef, _Mapping]] = ..., flag_key: _Optional[str] = ..., enabled: _Optional[bool] = ..., expected_revision: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class SetFlagStateResponse(_message.Message):
    __slots__ = ("flag_set",)
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    flag_set: FlagSet
    def __init__(self, flag_set: _Optional[_Union[FlagSet, _Mapping]] = ...) -> None: ...

class RolloutWeight(_message.Message):
    __slots__ = ("variant", "weight")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    variant: str
    weight: int
    def __init__(self, variant: _Optional[str] = ..., weight: _Optional[int] = ...) -> None: ...

class SetRolloutRequest(_message.Message):
    __slots__ = ("ref", "flag_key", "weights", "expected_revision", "reason")
    REF_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ref: FlagSetRef
    flag_key: str
    weights: _containers.RepeatedCompositeFieldContainer[RolloutWeight]
    expected_revision: int
    reason: str
    def __init__(self, ref: _Optional[_Union[FlagSetRef, _Mapping]] = ..., flag_key: _Optional[str] = ..., weights: _Optional[_Iterable[_Union[RolloutWeight, _Mapping]]] = ..., expected_revision: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class SetRolloutResponse(_message.Message):
    __slots__ = ("flag_set",)
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    flag_set: FlagSet
    def __init__(self, flag_set: _Optional[_Union[FlagSet, _Mapping]] = ...) -> None: ...

class ListFlagSetHistoryRequest(_message.Message):
    __slots__ = ("ref", "page_size", "before_version")
    REF_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    BEFORE_VERSION_FIELD_NUMBER: _ClassVar[int]
    ref: FlagSetRef
    page_size: int
    before_version: int
    def __init__(self, ref: _Optional[_Union[FlagSetRef, _Mapping]] = ..., page_size: _Optional[int] = ..., before_version: _Optional[int] = ...) -> None: ...

class ListFlagSetHistoryResponse(_message.Message):
    __slots__ = ("versions", "next_before_version")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_BEFORE_VERSION_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[FlagSet]
    next_before_version: int
    def __init__(self, versions: _Optional[_Iterable[_Union[FlagSet, _Mapping]]] = ..., next_before_version: _Optional[int] = ...) -> None: ...

class RollbackFlagSetRequest(_message.Message):
    __slots__ = ("ref", "to_version", "expected_revision", "reason")
    REF_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ref: FlagSetRef
    to_version: int
    expected_revision: int
    reason: str
    def __init__(self, ref: _Optional[_Union[FlagSetRef, _Mapping]] = ..., to_version: _Optional[int] = ..., expected_revision: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class RollbackFlagSetResponse(_message.Message):
    __slots__ = ("flag_set",)
    FLAG_SET_FIELD_NUMBER: _ClassVar[int]
    flag_set: FlagSet
    def __init__(self, flag_set: _Optional[_Union[FlagSet, _Mapping]] = ...) -> None: ...

class GetFlagStatsRequest(_message.Message):
    __slots__ = ("ref", "flag_key", "window_seconds")
    REF_FIELD_NUMBER: _ClassVar[int]
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ref: FlagSetRef
    flag_key: str
    window_seconds: int
    def __init__(self, ref: _Optional[_Union[FlagSetRef, _Mapping]] = ..., flag_key: _Optional[str] = ..., window_seconds: _Optional[int] = ...) -> None: ...

class FlagStat(_message.Message):
    __slots__ = ("flag_key", "variant", "reason", "count")
    FLAG_KEY_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    flag_key: str
    variant: str
    reason: str
    count: int
    def __init__(self, flag_key: _Optional[str] = ..., variant: _Optional[str] = ..., reason: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class GetFlagStatsResponse(_message.Message):
    __slots__ = ("stats", "window_seconds")
    STATS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_SECONDS_FIELD_NUMBER: _ClassVar[int]
    stats: _containers.RepeatedCompositeFieldContainer[FlagStat]
    window_seconds: int
    def __init__(self, stats: _Optional[_Iterable[_Union[FlagStat, _Mapping]]] = ..., window_seconds: _Optional[int] = ...) -> None: ...
