import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReadConsistency(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    READ_CONSISTENCY_UNSPECIFIED: _ClassVar[ReadConsistency]
    READ_CONSISTENCY_MIRROR: _ClassVar[ReadConsistency]
    READ_CONSISTENCY_STRONG: _ClassVar[ReadConsistency]
    READ_CONSISTENCY_STALE_OK: _ClassVar[ReadConsistency]

class Operation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATION_UNSPECIFIED: _ClassVar[Operation]
    OPERATION_PUT: _ClassVar[Operation]
    OPERATION_DELETE: _ClassVar[Operation]
    OPERATION_ROLLBACK: _ClassVar[Operation]
    OPERATION_ACCESS: _ClassVar[Operation]
READ_CONSISTENCY_UNSPECIFIED: ReadConsistency
READ_CONSISTENCY_MIRROR: ReadConsistency
READ_CONSISTENCY_STRONG: ReadConsistency
READ_CONSISTENCY_STALE_OK: ReadConsistency
OPERATION_UNSPECIFIED: Operation
OPERATION_PUT: Operation
OPERATION_DELETE: Operation
OPERATION_ROLLBACK: Operation
OPERATION_ACCESS: Operation

class ConfigKey(_message.Message):
    __slots__ = ("tenant", "environment", "service", "key")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    environment: str
    service: str
    key: str
    def __init__(self, tenant: _Optional[str] = ..., environment: _Optional[str] = ..., service: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class ConfigEntry(_message.Message):
    __slots__ = ("key", "value", "create_revision", "mod_revision", "version", "updated_by", "update_time", "reason", "value_digest", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CREATE_REVISION_FIELD_NUMBER: _ClassVar[int]
    MOD_REVISION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VALUE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    key: ConfigKey
    value: str
    create_revision: int
    mod_revision: int
    version: int
    updated_by: str
    update_time: _timestamp_pb2.Timestamp
    reason: str
    value_digest: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, key: _Optional[_Union[ConfigKey, _Mapping]] = ..., value: _Optional[str] = ..., create_revision: _Optional[int] = ..., mod_revision: _Optional[int] = ..., version: _Optional[int] = ..., updated_by: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., value_digest: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("key", "consistency", "resolve_secrets")
    KEY_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_SECRETS_FIELD_NUMBER: _ClassVar[int]
    key: ConfigKey
    consistency: ReadConsistency
    resolve_secrets: bool
    def __init__(self, key: _Optional[_Union[ConfigKey, _Mapping]] = ..., consistency: _Optional[_Union[ReadConsistency, str]] = ..., resolve_secrets: _Optional[bool] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("entry", "revision", "stale")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    entry: ConfigEntry
    revision: int
    stale: bool
    def __init__(self, entry: _Optional[_Union[ConfigEntry, _Mapping]] = ..., revision: _Optional[int] = ..., stale: _Optional[bool] = ...) -> None: ...

class BatchGetRequest(_message.Message):
    __slots__ = ("keys", "consistency", "resolve_secrets")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_SECRETS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[ConfigKey]
    consistency: ReadConsistency
    resolve_secrets: bool
    def __init__(self, keys: _Optional[_Iterable[_Union[ConfigKey, _Mapping]]] = ..., consistency: _Optional[_Union[ReadConsistency, str]] = ..., resolve_secrets: _Optional[bool] = ...) -> None: ...

class BatchGetResponse(_message.Message):
    __slots__ = ("entries", "missing", "revision", "stale")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[ConfigEntry]
    missing: _containers.RepeatedCompositeFieldContainer[ConfigKey]
    revision: int
    stale: bool
    def __init__(self, entries: _Optional[_Iterable[_Union[ConfigEntry, _Mapping]]] = ..., missing: _Optional[_Iterable[_Union[ConfigKey, _Mapping]]] = ..., revision: _Optional[int] = ..., stale: _Optional[bool] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("tenant", "environment", "service", "key_prefix", "page_size", "page_token", "consistency", "key_glob", "labels", "updated_by", "updated_after", "updated_before")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    KEY_PREFIX_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    KEY_GLOB_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    environment: str
    service: str
    key_prefix: str
    page_size: int
    page_token: str
    consistency: ReadConsistency
    key_glob: str
    labels: _containers.ScalarMap[str, str]
    updated_by: str
    updated_after: _timestamp_pb2.Timestamp
    updated_before: _timestamp_pb2.Timestamp
    def __init__(self, tenant: _Optional[str] = ..., environment: _Optional[str] = ..., service: _Optional[str] = ..., key_prefix: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., consistency: _Optional[_Union[ReadConsistency, str]] = ..., key_glob: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., updated_by: _Optional[str] = ..., updated_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("entries", "next_page_token", "revision", "stale")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[ConfigEntry]
    next_page_token: str
    revision: int
    stale: bool
    def __init__(self, entries: _Optional[_Iterable[_Union[ConfigEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., revision: _Optional[int] = ..., stale: _Optional[bool] = ...) -> None: ...

class PutRequest(_message.Message):
    __slots__ = ("key", "value", "expected_revision", "reason", "labels", "request_id")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    key: ConfigKey
    value: str
    expected_revision: int
    reason: str
    labels: _containers.ScalarMap[str, str]
    request_id: str
    def __init__(self, key: _Optional[_Union[ConfigKey, _Mapping]] = ..., value: _Optional[str] = ..., expected_revision: _Optional[int] = ..., reason: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., request_id: _Optional[str] = ...) -> None: ...

class PutResponse(_message.Message):
    __slots__ = ("entry", "revision")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    entry: ConfigEntry
    revision: int
    def __init__(self, entry: _Optional[_Union[ConfigEntry, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("key", "expected_revision", "reason", "request_id")
    KEY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    key: ConfigKey
    expected_revision: int
    reason: str
    request_id: str
    def __init__(self, key: _Optional[_Union[ConfigKey, _Mapping]] = ..., expected_revision: _Optional[int] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("previous", "revision", "version")
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    previous: ConfigEntry
    revision: int
    version: int
    def __init__(self, previous: _Optional[_Union[ConfigEntry, _Mapping]] = ..., revision: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class HistoryRecord(_message.Message):
    __slots__ = ("version", "operation", "value", "revision", "updated_by", "update_time", "reason", "value_digest", "rolled_back_to", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    VALUE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ROLLED_BACK_TO_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    version: int
    operation: Operation
    value: str
    revision: int
    updated_by: str
    update_time: _timestamp_pb2.Timestamp
    reason: str
    value_digest: str
    rolled_back_to: int
    labels: _containers.ScalarMap[str, str]
    def __init__(self, version: _Optional[int] = ..., operation: _Optional[_Union[Operation, str]] = ..., value: _Optional[str] = ..., revision: _Optional[int] = ..., updated_by: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., value_digest: _Optional[str] = ..., rolled_back_to: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class HistoryRequest(_message.Message):
    __slots__ = ("key", "page_size", "page_token")
    KEY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    key: ConfigKey
    page_size: int
    page_token: str
    def __init__(self, key: _Optional[_Union[ConfigKey, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class HistoryResponse(_message.Message):
    __slots__ = ("records", "next_page_token", "revision")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[HistoryRecord]
    next_page_token: str
    revision: int
    def __init__(self, records: _Optional[_Iterable[_Union[HistoryRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("key", "to_version", "expected_revision", "reason", "request_id")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    key: ConfigKey
    to_version: int
    expected_revision: int
    reason: str
    request_id: str
    def __init__(self, key: _Optional[_Union[ConfigKey, _Mapping]] = ..., to_version: _Optional[int] = ..., expected_revision: _Optional[int] = ..., reason: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RollbackResponse(_message.Message):
    __slots__ = ("entry", "revision")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    entry: ConfigEntry
    revision: int
    def __init__(self, entry: _Optional[_Union[ConfigEntry, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class ResolveRequest(_message.Message):
    __slots__ = ("tenant", "environment", "service", "consistency", "resolve_secrets")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_SECRETS_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    environment: str
    service: str
    consistency: ReadConsistency
    resolve_secrets: bool
    def __init__(self, tenant: _Optional[str] = ..., environment: _Optional[str] = ..., service: _Optional[str] = ..., consistency: _Optional[_Union[ReadConsistency, str]] = ..., resolve_secrets: _Optional[bool] = ...) -> None: ...

class Provenance(_message.Message):
    __slots__ = ("path", "layer", "key", "revision", "template")
    PATH_FIELD_NUMBER: _ClassVar[int]
    LAYER_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    path: str
    layer: str
    key: ConfigKey
    revision: int
    template: str
    def __init__(self, path: _Optional[str] = ..., layer: _Optional[str] = ..., key: _Optional[_Union[ConfigKey, _Mapping]] = ..., revision: _Optional[int] = ..., template: _Optional[str] = ...) -> None: ...

class ResolveResponse(_message.Message):
    __slots__ = ("document", "provenance", "last_change_revision", "revision", "stale")
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    LAST_CHANGE_REVISION_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    document: str
    provenance: _containers.RepeatedCompositeFieldContainer[Provenance]
    last_change_revision: int
    revision: int
    stale: bool
    def __init__(self, document: _Optional[str] = ..., provenance: _Optional[_Iterable[_Union[Provenance, _Mapping]]] = ..., last_change_revision: _Optional[int] = ..., revision: _Optional[int] = ..., stale: _Optional[bool] = ...) -> None: ...
