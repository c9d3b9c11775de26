"""Encoding between etcd key-values and the contract's messages.

Config entries are decoded once, when the mirror applies an event, into the
``ConfigEntry`` message that reads return, so the read path does no decoding.
"""

from __future__ import annotations

import time
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from configsvc.internal.v1 import storage_pb2
from configsvc.model.keys import ConfigKey
from configsvc.store.keyspace import Keyspace
from configsvc.v1 import config_pb2, tenant_pb2


def key_message(key: ConfigKey) -> config_pb2.ConfigKey:
    return config_pb2.ConfigKey(
        tenant=key.tenant, environment=key.environment, service=key.service, key=key.key
    )


def decode_stored(raw: bytes) -> storage_pb2.StoredValue:
    record = storage_pb2.StoredValue()
    record.ParseFromString(raw)
    return record


def entry_from_stored(
    key: ConfigKey, record: storage_pb2.StoredValue, *, create_revision: int, mod_revision: int
) -> config_pb2.ConfigEntry:
    # The mirror runs this for every change it applies. Message-valued keyword
    # arguments (a Timestamp, a map even when empty) cost more than the rest of
    # the constructor together, so those two fields are set afterwards.
    entry = config_pb2.ConfigEntry(
        key=key_message(key),
        value=record.value,
        create_revision=create_revision,
        mod_revision=mod_revision,
        version=record.version,
        updated_by=record.updated_by,
        reason=record.reason,
        value_digest=record.value_digest,
    )
    stamp, written = record.update_time, entry.update_time
    written.seconds, written.nanos = stamp.seconds, stamp.nanos
    if record.labels:
        entry.labels.update(record.labels)
    return entry


def entry_from_kv(key: ConfigKey, kv: Any) -> config_pb2.ConfigEntry:
    return entry_from_stored(
        key,
        decode_stored(kv.value),
        create_revision=int(kv.create_revision),
        mod_revision=int(kv.mod_revision),
    )


def history_from_kv(kv: Any) -> config_pb2.HistoryRecord:
    record = decode_stored(kv.value)
    return config_pb2.HistoryRecord(
        version=record.version,
        operation=record.operation,
        value=record.value,
        revision=int(kv.mod_revision),
        updated_by=record.updated_by,
        update_time=record.update_time,
        reason=record.reason,
        value_digest=record.value_digest,
        rolled_back_to=record.rolled_back_to,
        labels=record.labels,
    )


def tenant_from_kv(keyspace: Keyspace, kv: Any) -> tenant_pb2.Tenant:
    stored = storage_pb2.StoredTenant()
    stored.ParseFromString(kv.value)
    return tenant_pb2.Tenant(
        name=keyspace.tenant_from_key(kv.key) or "",
        description=stored.description,
        create_time=stored.create_time,
        created_by=stored.created_by,
        create_revision=int(kv.create_revision),
    )


def now_timestamp() -> Timestamp:
    stamp = Timestamp()
    set_now(stamp)
    return stamp


def set_now(stamp: Timestamp) -> None:
    """Set ``stamp`` to now, in place (also a message's Timestamp field)."""
    # Timestamp.GetCurrentTime goes through datetime and costs five times as much.
    stamp.seconds, stamp.nanos = divmod(time.time_ns(), 1_000_000_000)
