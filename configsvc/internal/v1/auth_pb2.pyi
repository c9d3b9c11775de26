from configsvc.v1 import auth_pb2 as _auth_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StoredApiKey(_message.Message):
    __slots__ = ("api_key", "salt", "secret_hash")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    SALT_FIELD_NUMBER: _ClassVar[int]
    SECRET_HASH_FIELD_NUMBER: _ClassVar[int]
    api_key: _auth_pb2.ApiKey
    salt: bytes
    secret_hash: bytes
    def __init__(self, api_key: _Optional[_Union[_auth_pb2.ApiKey, _Mapping]] = ..., salt: _Optional[bytes] = ..., secret_hash: _Optional[bytes] = ...) -> None: ...
