import datetime

from configsvc_client._gen.configsvc.v1 import config_pb2 as _config_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditRecord(_message.Message):
    __slots__ = ("id", "key", "operation", "actor", "time", "reason", "before_digest", "after_digest", "before_version", "after_version", "expected_revision", "rolled_back_to", "kind", "tenant", "name", "attributes", "trace_id")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    BEFORE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    AFTER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    BEFORE_VERSION_FIELD_NUMBER: _ClassVar[int]
    AFTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    ROLLED_BACK_TO_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    key: _config_pb2.ConfigKey
    operation: _config_pb2.Operation
    actor: str
    time: _timestamp_pb2.Timestamp
    reason: str
    before_digest: str
    after_digest: str
    before_version: int
    after_version: int
    expected_revision: int
    rolled_back_to: int
    kind: str
    tenant: str
    name: str
    attributes: _containers.ScalarMap[str, str]
    trace_id: str
    def __init__(self, id: _Optional[str] = ..., key: _Optional[_Union[_config_pb2.ConfigKey, _Mapping]] = ..., operation: _Optional[_Union[_config_pb2.Operation, str]] = ..., actor: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., before_digest: _Optional[str] = ..., after_digest: _Optional[str] = ..., before_version: _Optional[int] = ..., after_version: _Optional[int] = ..., expected_revision: _Optional[int] = ..., rolled_back_to: _Optional[int] = ..., kind: _Optional[str] = ..., tenant: _Optional[str] = ..., name: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., trace_id: _Optional[str] = ...) -> None: ...
