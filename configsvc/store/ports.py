"""What the domain needs of the store's parts, as small ``typing.Protocol``s.

Domain packages (watch, events, hier, auth, ...) annotate the parts they are
handed with these instead of the concrete ``EtcdClient``, ``Mirror`` and
``Writer``, so a unit test can pass a typed stand-in (no ``type: ignore``, no
``cast(Any, ...)``) and a reader of a domain module sees which few calls it
makes. The concrete classes satisfy every protocol structurally; mypy checks
that where the server hands them over.

``EtcdPort`` is defined beside ``EtcdClient`` (the store's lowest module, which
the rest of the store imports) and re-exported here.

Each protocol is one capability, and the wider ones are unions of them:
taking ``TenantDirectory`` says "only looks tenants up", taking ``MirrorPort``
says "reads anything the mirror holds".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

__all__ = [
    "ChangeFeed",
    "EtcdPort",
    "MirrorPort",
    "RecordReader",
    "RecordWriter",
    "TenantDirectory",
    "WatchSource",
    "WriterPort",
]

from configsvc.store.etcd import EtcdPort

if TYPE_CHECKING:  # only types
    from configsvc.model.keys import ConfigKey
    from configsvc.store.items import ChangeBatch, Item, Record, RecordBatch
    from configsvc.store.keyspace import Keyspace
    from configsvc.store.writes import RecordChange, WriteOptions, WriteResult
    from configsvc.v1 import audit_pb2, config_pb2, tenant_pb2


class TenantDirectory(Protocol):
    """Looks tenants up (the "tenant must exist" check needs only this)."""

    def tenant(self, name: str) -> tenant_pb2.Tenant | None: ...


class RecordReader(Protocol):
    """Reads mirrored non-config records (webhooks, API keys, schemas, ...)."""

    def record(self, raw: bytes) -> Record | None: ...

    def records(self, prefix: bytes) -> Iterator[tuple[bytes, Record]]: ...


class ChangeFeed(Protocol):
    """Follows the mirror's changes in revision order (the watch hub, caches)."""

    @property
    def revision(self) -> int: ...

    @property
    def first_revision(self) -> int: ...

    def add_change_listener(self, listener: Callable[[ChangeBatch], None]) -> None: ...

    def add_sync_listener(self, listener: Callable[[bool], None]) -> None: ...


class WatchSource(ChangeFeed, RecordReader, Protocol):
    """What the watch hub reads: the feed, snapshots of a scope, and etcd's own
    history for resume points older than this process has seen."""

    @property
    def etcd(self) -> EtcdPort: ...

    @property
    def keyspace(self) -> Keyspace: ...

    def scope_prefix(self, tenant: str, environment: str = "", service: str = "") -> bytes: ...

    def items(self, prefix: bytes) -> Iterator[Item]: ...


class MirrorPort(WatchSource, TenantDirectory, Protocol):
    """Everything a reader may ask of the mirror (``configsvc.store.mirror.Mirror``)."""

    @property
    def synced(self) -> bool: ...

    @property
    def records_generation(self) -> int: ...

    def require_available(self, *, allow_stale: bool) -> bool: ...

    async def sync(self, timeout: float) -> int: ...

    async def wait_applied(self, revision: int, timeout: float) -> bool: ...

    async def wait_synced(self, timeout: float) -> bool: ...

    def get(self, key: ConfigKey) -> config_pb2.ConfigEntry | None: ...

    def lookup(self, tenant: str, environment: str, service: str, key: str) -> Item | None: ...

    def tenants(self) -> list[tenant_pb2.Tenant]: ...

    def scan(self, prefix: bytes, after: bytes | None) -> Iterator[tuple[bytes, Any]]: ...

    def count(self, prefix: bytes) -> int: ...

    def add_record_listener(self, listener: Callable[[RecordBatch], None]) -> None: ...


class RecordWriter(Protocol):
    """Commits records and audit records in one Txn (``Writer.commit_records``), and
    scans etcd keys the mirror does not hold (``Writer.scan``)."""

    async def commit_records(
        self,
        tenant: str | None,
        changes: Sequence[RecordChange],
        audits: Sequence[audit_pb2.AuditRecord],
        *,
        timeout: float | None = None,
        options: WriteOptions | None = None,
    ) -> int: ...

    async def scan(self, prefix: bytes, *, timeout: float) -> list[Any]: ...


class WriterPort(RecordWriter, Protocol):
    """The config writes the domain makes (``configsvc.store.writer.Writer``)."""

    async def put(self, key: ConfigKey, value: str, options: WriteOptions) -> WriteResult: ...

    async def delete(self, key: ConfigKey, options: WriteOptions) -> WriteResult: ...

    async def rollback(
        self, key: ConfigKey, to_version: int, options: WriteOptions
    ) -> WriteResult: ...

    async def put_many(
        self,
        writes: Sequence[tuple[ConfigKey, str]],
        options: WriteOptions,
        attributes: Mapping[str, str] | None = None,
    ) -> list[WriteResult]: ...
