"""Stored records of the hierarchy features: JSON documents in etcd.

Layout (all mirrored, see ``keyspace.RECORD_KINDS``)::

    <root>/t/<tenant>/schema/<name>/<version>     immutable schema versions
    <root>/t/<tenant>/rule/<name>/<version>       immutable rule versions
    <root>/t/<tenant>/template/<name>/<version>   immutable template versions
    <root>/t/<tenant>/extends/<service>           a service's template list
    <root>/t/<tenant>/environment/<name>          a declared environment

Versions are zero-padded so etcd's key order is version order. A new version
is committed with "key absent" as its compare, so two writers can never both
create version N: one gets ABORTED. Deleting a schema or rule writes a
version with ``deleted: true``, so numbering never restarts and every version
stays readable. JSON rather than protobuf: the records are small, read
rarely outside the mirror, and readable with ``etcdctl``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from configsvc.errors import ConflictError
from configsvc.store.keyspace import Keyspace
from configsvc.store.ports import MirrorPort

SCHEMA = "schema"
RULE = "rule"
TEMPLATE = "template"
EXTENDS = "extends"
ENVIRONMENT = "environment"
KINDS = (SCHEMA, RULE, TEMPLATE, EXTENDS, ENVIRONMENT)

_VERSION_WIDTH = 20


@dataclass(frozen=True)
class StoredRecord:
    """One record: its name parts, version (0 when unversioned), JSON body and revisions."""

    name: str
    version: int
    body: Mapping[str, Any]
    mod_revision: int
    create_revision: int


def encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def version_key(ks: Keyspace, tenant: str, kind: str, name: str, version: int) -> bytes:
    return ks.record_key(tenant, kind, name, f"{version:0{_VERSION_WIDTH}d}")


def plain_key(ks: Keyspace, tenant: str, kind: str, name: str) -> bytes:
    return ks.record_key(tenant, kind, name)


def _decode(raw: bytes, prefix: bytes, mod: int, create: int, value: bytes) -> StoredRecord:
    parts = raw[len(prefix) :].decode().split("/")
    version = int(parts[1]) if len(parts) == 2 else 0
    return StoredRecord(parts[0], version, json.loads(value), mod, create)


def scan(mirror: MirrorPort, ks: Keyspace, tenant: str, kind: str) -> Iterator[StoredRecord]:
    """Every record of ``kind`` of ``tenant`` in the mirror, in (name, version) order."""
    prefix = ks.record_prefix(tenant, kind)
    for raw, record in mirror.records(prefix):
        yield _decode(raw, prefix, record.mod_revision, record.create_revision, record.value)


def versions(
    mirror: MirrorPort, ks: Keyspace, tenant: str, kind: str, name: str
) -> list[StoredRecord]:
    """Every version of one versioned record, oldest first."""
    prefix = ks.record_key(tenant, kind, name) + b"/"
    base = ks.record_prefix(tenant, kind)
    return [
        _decode(raw, base, r.mod_revision, r.create_revision, r.value)
        for raw, r in mirror.records(prefix)
    ]


def latest_by_name(records: Iterator[StoredRecord]) -> dict[str, StoredRecord]:
    """The highest version of each name (records come in (name, version) order)."""
    latest: dict[str, StoredRecord] = {}
    for record in records:
        latest[record.name] = record
    return latest


def next_version(current: StoredRecord | None, expected: int | None, what: str) -> int:
    """The version a new write creates, after checking the caller's expected version."""
    version = current.version if current is not None else 0
    if expected is not None and expected != version:
        conflict = ConflictError(what, expected, version)
        conflict.message = (
            f"{what} changed: expected version {expected}, current version "
            f"{version}; read it again and retry"
        )
        raise conflict
    return version + 1


def timestamp_text(stamp: Timestamp) -> str:
    return str(stamp.ToJsonString())


def parse_timestamp(text: str) -> Timestamp:
    stamp = Timestamp()
    if text:
        stamp.FromJsonString(text)
    return stamp


def from_kvs(ks: Keyspace, tenant: str, kind: str, kvs: list[Any]) -> Iterator[StoredRecord]:
    """Records of ``kind`` from etcd key-values (a range read at an older revision)."""
    prefix = ks.record_prefix(tenant, kind)
    for kv in kvs:
        yield _decode(
            bytes(kv.key), prefix, int(kv.mod_revision), int(kv.create_revision), bytes(kv.value)
        )


def tenant_of_record(ks: Keyspace, raw: bytes) -> str | None:
    """The tenant of a hierarchy record key (one of ``KINDS``), else None."""
    base = ks.root.encode() + b"/t/"
    if not raw.startswith(base):
        return None
    parts = raw[len(base) :].split(b"/", 2)
    if len(parts) == 3 and parts[1].decode() in KINDS:
        return parts[0].decode()
    return None
