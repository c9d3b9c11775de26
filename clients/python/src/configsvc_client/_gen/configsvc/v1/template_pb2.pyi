import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Template(_message.Message):
    __slots__ = ("tenant", "name", "version", "values", "extends", "description", "created_by", "create_time", "revision")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    EXTENDS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    name: str
    version: int
    values: _containers.ScalarMap[str, str]
    extends: _containers.RepeatedScalarFieldContainer[str]
    description: str
    created_by: str
    create_time: _timestamp_pb2.Timestamp
    revision: int
    def __init__(self, tenant: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., values: _Optional[_Mapping[str, str]] = ..., extends: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., created_by: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class PutTemplateRequest(_message.Message):
    __slots__ = ("tenant", "name", "values", "extends", "description", "expected_version", "reason")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    EXTENDS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    name: str
    values: _containers.ScalarMap[str, str]
    extends: _containers.RepeatedScalarFieldContainer[str]
    description: str
    expected_version: int
    reason: str
    def __init__(self, tenant: _Optional[str] = ..., name: _Optional[str] = ..., values: _Optional[_Mapping[str, str]] = ..., extends: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., expected_version: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class PutTemplateResponse(_message.Message):
    __slots__ = ("template", "revision")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    template: Template
    revision: int
    def __init__(self, template: _Optional[_Union[Template, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class GetTemplateRequest(_message.Message):
    __slots__ = ("tenant", "name", "version")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    name: str
    version: int
    def __init__(self, tenant: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetTemplateResponse(_message.Message):
    __slots__ = ("template", "revision")
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    template: Template
    revision: int
    def __init__(self, template: _Optional[_Union[Template, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class ListTemplatesRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class ListTemplatesResponse(_message.Message):
    __slots__ = ("templates", "revision")
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[Template]
    revision: int
    def __init__(self, templates: _Optional[_Iterable[_Union[Template, _Mapping]]] = ..., revision: _Optional[int] = ...) -> None: ...

class SetExtendsRequest(_message.Message):
    __slots__ = ("tenant", "service", "extends", "expected_revision", "reason")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    EXTENDS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_REVISION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    service: str
    extends: _containers.RepeatedScalarFieldContainer[str]
    expected_revision: int
    reason: str
    def __init__(self, tenant: _Optional[str] = ..., service: _Optional[str] = ..., extends: _Optional[_Iterable[str]] = ..., expected_revision: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class SetExtendsResponse(_message.Message):
    __slots__ = ("extends", "expanded", "revision")
    EXTENDS_FIELD_NUMBER: _ClassVar[int]
    EXPANDED_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    extends: _containers.RepeatedScalarFieldContainer[str]
    expanded: _containers.RepeatedScalarFieldContainer[str]
    revision: int
    def __init__(self, extends: _Optional[_Iterable[str]] = ..., expanded: _Optional[_Iterable[str]] = ..., revision: _Optional[int] = ...) -> None: ...

class GetExtendsRequest(_message.Message):
    __slots__ = ("tenant", "service")
    TENANT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    service: str
    def __init__(self, tenant: _Optional[str] = ..., service: _Optional[str] = ...) -> None: ...

class GetExtendsResponse(_message.Message):
    __slots__ = ("extends", "expanded", "extends_revision", "revision")
    EXTENDS_FIELD_NUMBER: _ClassVar[int]
    EXPANDED_FIELD_NUMBER: _ClassVar[int]
    EXTENDS_REVISION_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    extends: _containers.RepeatedScalarFieldContainer[str]
    expanded: _containers.RepeatedScalarFieldContainer[str]
    extends_revision: int
    revision: int
    def __init__(self, extends: _Optional[_Iterable[str]] = ..., expanded: _Optional[_Iterable[str]] = ..., extends_revision: _Optional[int] = ..., revision: _Optional[int] = ...) -> None: ...
