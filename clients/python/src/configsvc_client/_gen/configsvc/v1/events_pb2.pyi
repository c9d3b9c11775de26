import datetime

from configsvc_client._gen.configsvc.v1 import config_pb2 as _config_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConfigurationUpdatedEvent(_message.Message):
    __slots__ = ("event_id", "revision", "tenant", "scope", "key", "change_type", "old_version", "new_version", "old_revision", "new_revision", "old_digest", "new_digest", "new_value", "value_withheld", "actor", "reason", "time", "trace_id", "kind", "name", "audit_id", "rolled_back_to")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    CHANGE_TYPE_FIELD_NUMBER: _ClassVar[int]
    OLD_VERSION_FIELD_NUMBER: _ClassVar[int]
    NEW_VERSION_FIELD_NUMBER: _ClassVar[int]
    OLD_REVISION_FIELD_NUMBER: _ClassVar[int]
    NEW_REVISION_FIELD_NUMBER: _ClassVar[int]
    OLD_DIGEST_FIELD_NUMBER: _ClassVar[int]
    NEW_DIGEST_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_FIELD_NUMBER: _ClassVar[int]
    VALUE_WITHHELD_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    AUDIT_ID_FIELD_NUMBER: _ClassVar[int]
    ROLLED_BACK_TO_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    revision: int
    tenant: str
    scope: str
    key: _config_pb2.ConfigKey
    change_type: _config_pb2.Operation
    old_version: int
    new_version: int
    old_revision: int
    new_revision: int
    old_digest: str
    new_digest: str
    new_value: str
    value_withheld: bool
    actor: str
    reason: str
    time: _timestamp_pb2.Timestamp
    trace_id: str
    kind: str
    name: str
    audit_id: str
    rolled_back_to: int
    def __init__(self, event_id: _Optional[str] = ..., revision: _Optional[int] = ..., tenant: _Optional[str] = ..., scope: _Optional[str] = ..., key: _Optional[_Union[_config_pb2.ConfigKey, _Mapping]] = ..., change_type: _Optional[_Union[_config_pb2.Operation, str]] = ..., old_version: _Optional[int] = ..., new_version: _Optional[int] = ..., old_revision: _Optional[int] = ..., new_revision: _Optional[int] = ..., old_digest: _Optional[str] = ..., new_digest: _Optional[str] = ..., new_value: _Optional[str] = ..., value_withheld: _Optional[bool] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., trace_id: _Optional[str] = ..., kind: _Optional[str] = ..., name: _Optional[str] = ..., audit_id: _Optional[str] = ..., rolled_back_to: _Optional[int] = ...) -> None: ...

class GetPublisherStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPublisherStatusResponse(_message.Message):
    __slots__ = ("healthy", "reason", "leader", "is_leader", "cursor_revision", "head_revision", "backlog_revisions", "pending_events", "published_events", "topic")
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LEADER_FIELD_NUMBER: _ClassVar[int]
    IS_LEADER_FIELD_NUMBER: _ClassVar[int]
    CURSOR_REVISION_FIELD_NUMBER: _ClassVar[int]
    HEAD_REVISION_FIELD_NUMBER: _ClassVar[int]
    BACKLOG_REVISIONS_FIELD_NUMBER: _ClassVar[int]
    PENDING_EVENTS_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_EVENTS_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    healthy: bool
    reason: str
    leader: str
    is_leader: bool
    cursor_revision: int
    head_revision: int
    backlog_revisions: int
    pending_events: int
    published_events: int
    topic: str
    def __init__(self, healthy: _Optional[bool] = ..., reason: _Optional[str] = ..., leader: _Optional[str] = ..., is_leader: _Optional[bool] = ..., cursor_revision: _Optional[int] = ..., head_revision: _Optional[int] = ..., backlog_revisions: _Optional[int] = ..., pending_events: _Optional[int] = ..., published_events: _Optional[int] = ..., topic: _Optional[str] = ...) -> None: ...
