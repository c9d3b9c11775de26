import datetime

from configsvc_client._gen.configsvc.v1 import config_pb2 as _config_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Schema(_message.Message):
    __slots__ = ("tenant", "name", "version", "pattern", "environment", "service", "schema", "description", "updated_by", "update_time", "revision", "deleted")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    name: str
    version: int
    pattern: str
    environment: str
    service: str
    schema: str
    description: str
    updated_by: str
    update_time: _timestamp_pb2.Timestamp
    revision: int
    deleted: bool
    def __init__(self, tenant: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., pattern: _Optional[str] = ..., environment: _Optional[str] = ..., service: _Optional[str] = ..., schema: _Optional[str] = ..., description: _Optional[str] = ..., updated_by: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revision: _Optional[int] = ..., deleted: _Optional[bool] = ...) -> None: ...

class ValueViolation(_message.Message):
    __slots__ = ("key", "field", "description")
    KEY_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    key: _config_pb2.ConfigKey
    field: str
    description: str
    def __init__(self, key: _Optional[_Union[_config_pb2.ConfigKey, _Mapping]] = ..., field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class RuleViolation(_message.Message):
    __slots__ = ("rule", "service", "environment", "message")
    RULE_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    rule: str
    service: str
    environment: str
    message: str
    def __init__(self, rule: _Optional[str] = ..., service: _Optional[str] = ..., environment: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class PutSchemaRequest(_message.Message):
    __slots__ = ("tenant", "name", "pattern", "environment", "service", "schema", "description", "expected_version", "reason", "force")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    name: str
    pattern: str
    environment: str
    service: str
    schema: str
    description: str
    expected_version: int
    reason: str
    force: bool
    def __init__(self, tenant: _Optional[str] = ..., name: _Optional[str] = ..., pattern: _Optional[str] = ..., environment: _Optional[str] = ..., service: _Optional[str] = ..., schema: _Optional[str] = ..., description: _Optional[str] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class PutSchemaResponse(_message.Message):
    __slots__ = ("schema", "revision", "existing_violations")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    EXISTING_VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    schema: Schema
    revision: int
    existing_violations: _containers.RepeatedCompositeFieldContainer[ValueViolation]
    def __init__(self, schema: _Optional[_Union[Schema, _Mapping]] = ..., revision: _Optional[int] = ..., existing_violations: _Optional[_Iterable[_Union[ValueViolation, _Mapping]]] = ...) -> None: ...

class GetSchemaRequest(_message.Message):
    __slots__ = ("tenant", "name", "version")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    name: str
    version: int
    def __init__(self, tenant: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetSchemaResponse(_message.Message):
    __slots__ = ("schema", "revision")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    schema: Schema
    revision: int
    def __init__(self, schema: _Optional[_Union[Schema, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class ListSchemasRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class ListSchemasResponse(_message.Message):
    __slots__ = ("schemas", "revision")
    SCHEMAS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    schemas: _containers.RepeatedCompositeFieldContainer[Schema]
    revision: int
    def __init__(self, schemas: _Optional[_Iterable[_Union[Schema, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

class DeleteSchemaRequest(_message.Message):
    __slots__ = ("tenant", "name", "expected_version", "reason")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    name: str
    expected_version: int
    reason: str
    def __init__(self, tenant: _Optional[str] = ..., name: _Optional[str] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class DeleteSchemaResponse(_message.Message):
    __slots__ = ("version", "revision")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    version: int
    revision: int
    def __init__(self, version: _Optional[int] = ..., revision: _Optional[int] = ...) -> None: ...

class Rule(_message.Message):
    __slots__ = ("tenant", "name", "version", "logic", "message", "environment", "service", "updated_by", "update_time", "revision", "deleted")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    LOGIC_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    name: str
    version: int
    logic: str
    message: str
    environment: str
    service: str
    updated_by: str
    update_time: _timestamp_pb2.Timestamp
    revision: int
    deleted: bool
    def __init__(self, tenant: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., logic: _Optional[str] = ..., message: _Optional[str] = ..., environment: _Optional[str] = ..., service: _Optional[str] = ..., updated_by: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revision: _Optional[int] = ..., deleted: _Optional[bool] = ...) -> None: ...

class PutRuleRequest(_message.Message):
    __slots__ = ("tenant", "name", "logic", "message", "environment", "service", "expected_version", "reason", "force")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOGIC_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    name: str
    logic: str
    message: str
    environment: str
    service: str
    expected_version: int
    reason: str
    force: bool
    def __init__(self, tenant: _Optional[str] = ..., name: _Optional[str] = ..., logic: _Optional[str] = ..., message: _Optional[str] = ..., environment: _Optional[str] = ..., service: _Optional[str] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ..., force: _Optional[bool] = ...) -> None: ...

class PutRuleResponse(_message.Message):
    __slots__ = ("rule", "revision", "existing_violations")
    RULE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    EXISTING_VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    rule: Rule
    revision: int
    existing_violations: _containers.RepeatedCompositeFieldContainer[RuleViolation]
    def __init__(self, rule: _Optional[_Union[Rule, _Mapping]] = ..., revision: _Optional[int] = ..., existing_violations: _Optional[_Iterable[_Union[RuleViolation, _Mapping]]] = ...) -> None: ...

class ListRulesRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class ListRulesResponse(_message.Message):
    __slots__ = ("rules", "revision")
    RULES_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    rules: _containers.RepeatedCompositeFieldContainer[Rule]
    revision: int
    def __init__(self, rules: _Optional[_Iterable[_Union[Rule, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

class DeleteRuleRequest(_message.Message):
    __slots__ = ("tenant", "name", "expected_version", "reason")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    name: str
    expected_version: int
    reason: str
    def __init__(self, tenant: _Optional[str] = ..., name: _Optional[str] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class DeleteRuleResponse(_message.Message):
    __slots__ = ("version", "revision")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    version: int
    revision: int
    def __init__(self, version: _Optional[int] = ..., revision: _Optional[int] = ...) -> None: ...

class ProposedWrite(_message.Message):
    __slots__ = ("key", "value", "delete")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    key: _config_pb2.ConfigKey
    value: str
    delete: bool
    def __init__(self, key: _Optional[_Union[_config_pb2.ConfigKey, _Mapping]] = ..., value: _Optional[str] = ..., delete: _Optional[bool] = ...) -> None: ...

class ValidateRequest(_message.Message):
    __slots__ = ("tenant", "writes", "schema", "rule")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    WRITES_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    writes: _containers.RepeatedCompositeFieldContainer[ProposedWrite]
    schema: PutSchemaRequest
    rule: PutRuleRequest
    def __init__(self, tenant: _Optional[str] = ..., writes: _Optional[_Iterable[_Union[ProposedWrite, _Mapping]]] = ..., schema: _Optional[_Union[PutSchemaRequest, _Mapping]] = ..., rule: _Optional[_Union[PutRuleRequest, _Mapping]] = ...) -> None: ...

class ValidateResponse(_message.Message):
    __slots__ = ("valid", "value_violations", "rule_violations", "revision")
    VALID_FIELD_NUMBER: _ClassVar[int]
    VALUE_VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    RULE_VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    value_violations: _containers.RepeatedCompositeFieldContainer[ValueViolation]
    rule_violations: _containers.RepeatedCompositeFieldContainer[RuleViolation]
    revision: int
    def __init__(self, valid: _Optional[bool] = ..., value_violations: _Optional[_Iterable[_Union[ValueViolation, _Mapping]]] = ..., rule_violations: _Optional[_Iterable[_Union[RuleViolation, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...
