import datetime

from configsvc.v1 import config_pb2 as _config_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StoredValue(_message.Message):
    __slots__ = ("value", "version", "updated_by", "update_time", "reason", "operation", "value_digest", "rolled_back_to", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    VALUE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    VALUE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    ROLLED_BACK_TO_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    value: str
    version: int
    updated_by: str
    update_time: _timestamp_pb2.Timestamp
    reason: str
    operation: _config_pb2.Operation
    value_digest: str
    rolled_back_to: int
    labels: _containers.ScalarMap[str, str]
    def __init__(self, value: _Optional[str] = ..., version: _Optional[int] = ..., updated_by: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., operation: _Optional[_Union[_config_pb2.Operation, str]] = ..., value_digest: _Optional[str] = ..., rolled_back_to: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class StoredTenant(_message.Message):
    __slots__ = ("description", "create_time", "created_by")
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    description: str
    create_time: _timestamp_pb2.Timestamp
    created_by: str
    def __init__(self, description: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ...) -> None: ...
