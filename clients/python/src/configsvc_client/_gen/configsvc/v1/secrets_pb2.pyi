from configsvc_client._gen.configsvc.v1 import config_pb2 as _config_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SecretRef(_message.Message):
    __slots__ = ("mount", "path", "field", "version")
    MOUNT_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    mount: str
    path: str
    field: str
    version: int
    def __init__(self, mount: _Optional[str] = ..., path: _Optional[str] = ..., field: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class SecretsRotated(_message.Message):
    __slots__ = ("revision", "refs", "entries")
    REVISION_FIELD_NUMBER: _ClassVar[int]
    REFS_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    revision: int
    refs: _containers.RepeatedCompositeFieldContainer[SecretRef]
    entries: _containers.RepeatedCompositeFieldContainer[_config_pb2.ConfigEntry]
    def __init__(self, revision: _Optional[int] = ..., refs: _Optional[_Iterable[_Union[SecretRef, _Mapping]]] = ..., entries: _Optional[_Iterable[_Union[_config_pb2.ConfigEntry, _Mapping]]] = ...) -> None: ...

class RewrapCiphertextsRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: str
    def __init__(self, tenant: _Optional[str] = ...) -> None: ...

class RewrapCiphertextsResponse(_message.Message):
    __slots__ = ("rewrapped", "unchanged", "revision", "rewrapped_webhooks")
    REWRAPPED_FIELD_NUMBER: _ClassVar[int]
    UNCHANGED_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    REWRAPPED_WEBHOOKS_FIELD_NUMBER: _ClassVar[int]
    rewrapped: _containers.RepeatedCompositeFieldContainer[_config_pb2.ConfigKey]
    unchanged: int
    revision: int
    rewrapped_webhooks: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, rewrapped: _Optional[_Iterable[_Union[_config_pb2.ConfigKey, _Mapping]]] = ..., unchanged: _Optional[int] = ..., revision: _Optional[int] = ..., rewrapped_webhooks: _Optional[_Iterable[str]] = ...) -> None: ...
