"""API keys: ``cs_<id>_<secret>``, stored only as a salted SHA-256 under ``sys/apikeys/<id>``.

The secret is 32 random bytes, so a fast hash is as strong as a slow one
(there is nothing to guess) and verification costs a microsecond: the id
picks the mirrored record, the hash is compared in constant time, and the
verified key is cached until any record changes. A revoked key (record
deleted) fails on the next call.

Names are unique for the installation's lifetime: ``sys/apikeynames/<name>``
records which key took a name and is never deleted, not even by a revoke.
Role bindings attach to the identity ``key:<name>``, so this is what keeps a
binding from passing to a later key that happens to get the same name (the
bootstrap admin's binding to a look-alike ``bootstrap-admin`` key, a revoked
key's grants to its namesake). Names rather than key ids, because the name is
also the audit actor, the rate-limit identity and the secrets policy's actor:
with names never recycled, each of them means one key forever.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time

from configsvc.errors import UnauthenticatedError
from configsvc.internal.v1 import auth_pb2 as stored_pb2
from configsvc.rpc.principal import API_KEY, Principal
from configsvc.store.keyspace import Keyspace
from configsvc.store.ports import MirrorPort
from configsvc.v1 import auth_pb2

PREFIX = "cs_"
KIND = "apikeys"
#: ``sys/apikeynames/<name>`` -> the id of the key that took the name (kept forever).
NAMES_KIND = "apikeynames"
_ID_BYTES = 8
_CACHE_MAX = 10_000


def new_key() -> tuple[str, str]:
    """A fresh (id, full secret)."""
    key_id = os.urandom(_ID_BYTES).hex()
    secret = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    return key_id, f"{PREFIX}{key_id}_{secret}"


def key_id_of(token: str) -> str | None:
    """The id inside a well-formed key, else None."""
    if not token.startswith(PREFIX):
        return None
    key_id, sep, secret = token[len(PREFIX) :].partition("_")
    if not sep or not secret or len(key_id) != 2 * _ID_BYTES:
        return None
    try:
        bytes.fromhex(key_id)
    except ValueError:
        return None
    return key_id


def hash_secret(salt: bytes, token: str) -> bytes:
    return hashlib.sha256(salt + token.encode()).digest()


def stored(api_key: auth_pb2.ApiKey, token: str) -> stored_pb2.StoredApiKey:
    salt = os.urandom(16)
    return stored_pb2.StoredApiKey(api_key=api_key, salt=salt, secret_hash=hash_secret(salt, token))


def identity(name: str) -> str:
    return f"key:{name}"


class ApiKeys:
    """Verifies presented keys against the mirrored records."""

    def __init__(self, mirror: MirrorPort, keyspace: Keyspace) -> None:
        self._mirror = mirror
        self._ks = keyspace
        self._cache: dict[str, Principal] = {}
        self._generation = -1

    def record_key(self, key_id: str) -> bytes:
        return self._ks.sys_key(KIND, key_id)

    def name_key(self, name: str) -> bytes:
        return self._ks.sys_key(NAMES_KIND, name)

    def name_holder(self, name: str) -> str | None:
        """The id of the key that took ``name`` (empty if unknown), or None if it is free."""
        record = self._mirror.record(self.name_key(name))
        return None if record is None else record.value.decode(errors="replace")

    def has_record(self, raw: bytes) -> bool:
        """Is there a mirrored record at ``raw`` (a marker such as ``sys/auth/...``)?"""
        return self._mirror.record(raw) is not None

    def load(self, key_id: str) -> tuple[stored_pb2.StoredApiKey, int] | None:
        record = self._mirror.record(self.record_key(key_id))
        if record is None:
            return None
        return stored_pb2.StoredApiKey.FromString(record.value), record.create_revision

    def exists(self, key_id: str) -> bool:
        return self._mirror.record(self.record_key(key_id)) is not None

    def verify(self, token: str) -> Principal:
        if self._generation != self._mirror.records_generation:
            self._cache.clear()
            self._generation = self._mirror.records_generation
        principal = self._cache.get(token)
        if principal is None:
            principal = self._check(token)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[token] = principal
        if principal.expires_at is not None and time.time() >= principal.expires_at:
            raise UnauthenticatedError("the API key has expired; create a new one")
        return principal

    def _check(self, token: str) -> Principal:
        key_id = key_id_of(token)
        found = self.load(key_id) if key_id is not None else None
        if key_id is None or found is None:
            raise UnauthenticatedError("the API key is unknown or revoked")
        record = found[0]
        if not hmac.compare_digest(hash_secret(record.salt, token), record.secret_hash):
            raise UnauthenticatedError("the API key is unknown or revoked")
        expires = (
            record.api_key.expire_time.ToNanoseconds() / 1e9
            if record.api_key.HasField("expire_time")
            else None
        )
        return Principal(identity(record.api_key.name), API_KEY, expires, key_id)

    def listing(self) -> list[auth_pb2.ApiKey]:
        keys = []
        for _raw, record in self._mirror.records(self._ks.sys_key(KIND, "")):
            key = stored_pb2.StoredApiKey.FromString(record.value).api_key
            key.create_revision = record.create_revision
            keys.append(key)
        return keys
