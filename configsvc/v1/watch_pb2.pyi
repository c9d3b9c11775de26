from configsvc.v1 import config_pb2 as _config_pb2
from configsvc.v1 import secrets_pb2 as _secrets_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChangeType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_TYPE_UNSPECIFIED: _ClassVar[ChangeType]
    CHANGE_TYPE_PUT: _ClassVar[ChangeType]
    CHANGE_TYPE_DELETE: _ClassVar[ChangeType]

class ResetReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESET_REASON_UNSPECIFIED: _ClassVar[ResetReason]
    RESET_REASON_RESUME_TOO_OLD: _ClassVar[ResetReason]
    RESET_REASON_SLOW_CONSUMER: _ClassVar[ResetReason]
    RESET_REASON_RESUME_AHEAD: _ClassVar[ResetReason]
    RESET_REASON_PERMISSIONS_CHANGED: _ClassVar[ResetReason]
CHANGE_TYPE_UNSPECIFIED: ChangeType
CHANGE_TYPE_PUT: ChangeType
CHANGE_TYPE_DELETE: ChangeType
RESET_REASON_UNSPECIFIED: ResetReason
RESET_REASON_RESUME_TOO_OLD: ResetReason
RESET_REASON_SLOW_CONSUMER: ResetReason
RESET_REASON_RESUME_AHEAD: ResetReason
RESET_REASON_PERMISSIONS_CHANGED: ResetReason

class WatchSelector(_message.Message):
    __slots__ = ("tenant", "environment", "service", "keys", "key_prefixes", "resolved")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    KEY_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    environment: str
    service: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    key_prefixes: _containers.RepeatedScalarFieldContainer[str]
    resolved: bool
    def __init__(self, tenant: _Optional[str] = ..., environment: _Optional[str] = ..., service: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ..., key_prefixes: _Optional[_Iterable[str]] = ..., resolved: _Optional[bool] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("selectors", "start_revision", "send_snapshot", "resolve_secrets")
    SELECTORS_FIELD_NUMBER: _ClassVar[int]
    START_REVISION_FIELD_NUMBER: _ClassVar[int]
    SEND_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_SECRETS_FIELD_NUMBER: _ClassVar[int]
    selectors: _containers.RepeatedCompositeFieldContainer[WatchSelector]
    start_revision: int
    send_snapshot: bool
    resolve_secrets: bool
    def __init__(self, selectors: _Optional[_Iterable[_Union[WatchSelector, _Mapping]]] = ..., start_revision: _Optional[int] = ..., send_snapshot: _Optional[bool] = ..., resolve_secrets: _Optional[bool] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("snapshot", "snapshot_end", "changes", "progress", "reset", "resolved", "secrets_rotated")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_END_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    SECRETS_ROTATED_FIELD_NUMBER: _ClassVar[int]
    snapshot: SnapshotChunk
    snapshot_end: SnapshotEnd
    changes: Changes
    progress: Progress
    reset: Reset
    resolved: ResolvedView
    secrets_rotated: _secrets_pb2.SecretsRotated
    def __init__(self, snapshot: _Optional[_Union[SnapshotChunk, _Mapping]] = ..., snapshot_end: _Optional[_Union[SnapshotEnd, _Mapping]] = ..., changes: _Optional[_Union[Changes, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., reset: _Optional[_Union[Reset, _Mapping]] = ..., resolved: _Optional[_Union[ResolvedView, _Mapping]] = ..., secrets_rotated: _Optional[_Union[_secrets_pb2.SecretsRotated, _Mapping]] = ...) -> None: ...

class ResolvedView(_message.Message):
    __slots__ = ("revision", "document", "patch", "last_change_revision", "document_digest")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    PATCH_FIELD_NUMBER: _ClassVar[int]
    LAST_CHANGE_REVISION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_DIGEST_FIELD_NUMBER: _ClassVar[int]
    revision: int
    document: str
    patch: str
    last_change_revision: int
    document_digest: str
    def __init__(self, revision: _Optional[int] = ..., document: _Optional[str] = ..., patch: _Optional[str] = ..., last_change_revision: _Optional[int] = ..., document_digest: _Optional[str] = ...) -> None: ...

class SnapshotChunk(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_config_pb2.ConfigEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[_config_pb2.ConfigEntry, _Mapping]]] = ...) -> None: ...

class SnapshotEnd(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: int
    def __init__(self, revision: _Optional[int] = ...) -> None: ...

class Change(_message.Message):
    __slots__ = ("type", "key", "entry")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    type: ChangeType
    key: _config_pb2.ConfigKey
    entry: _config_pb2.ConfigEntry
    def __init__(self, type: _Optional[_Union[ChangeType, str]] = ..., key: _Optional[_Union[_config_pb2.ConfigKey, _Mapping]] = ..., entry: _Optional[_Union[_config_pb2.ConfigEntry, _Mapping]] = ...) -> None: ...

class Changes(_message.Message):
    __slots__ = ("revision", "changes")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    revision: int
    changes: _containers.RepeatedCompositeFieldContainer[Change]
    def __init__(self, revision: _Optional[int] = ..., changes: _Optional[_Iterable[_Union[Change, _Mapping]]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("revision",)
    REVISION_FIELD_NUMBER: _ClassVar[int]
    revision: int
    def __init__(self, revision: _Optional[int] = ...) -> None: ...

class Reset(_message.Message):
    __slots__ = ("reason", "compact_revision", "revision", "message")
    REASON_FIELD_NUMBER: _ClassVar[int]
    COMPACT_REVISION_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    reason: ResetReason
    compact_revision: int
    revision: int
    message: str
    def __init__(self, reason: _Optional[_Union[ResetReason, str]] = ..., compact_revision: _Optional[int] = ..., revision: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...
