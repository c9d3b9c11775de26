"""Filtered scans of the audit trail in etcd.

Audit keys end in a time-ordered id (``<nanoseconds>-<random>``), so a time
range is a key range; every other filter (actor, key prefix, revision range)
is applied while scanning (``configsvc.store.scan``: bounded per call, so a
page may be short, with a token to continue).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from configsvc.errors import InvalidArgumentError
from configsvc.rpc import requests
from configsvc.store import scan
from configsvc.store.etcd import prefix_range_end
from configsvc.store.keyspace import Keyspace
from configsvc.store.ports import EtcdPort
from configsvc.v1 import audit_pb2, audit_query_pb2

#: The id's time and the record's ``time`` are taken separately (microseconds
#: apart, or more when a caller sets the time): the key range is widened by this
#: much and the exact time filter is applied to ``time``.
_ID_SLACK_NS = 60 * 10**9


@dataclass(frozen=True)
class AuditQuery:
    """A validated ``AuditFilter``."""

    tenant: str | None
    environment: str = ""
    service: str = ""
    key_prefix: str = ""
    actor: str = ""
    start_ns: int = 0
    end_ns: int = 0
    start_revision: int = 0
    end_revision: int = 0
    kind: str = ""

    @classmethod
    def parse(cls, message: audit_query_pb2.AuditFilter, field: str = "filter") -> AuditQuery:
        def path(name: str) -> str:
            return f"{field}.{name}"

        for name in ("start_revision", "end_revision"):
            if getattr(message, name) < 0:
                raise InvalidArgumentError.single(path(name), "must be 0 (unbounded) or more")
        if message.end_revision and message.start_revision > message.end_revision:
            raise InvalidArgumentError.single(
                path("end_revision"),
                f"is {message.end_revision}, before start_revision {message.start_revision}",
            )
        start_ns = requests.timestamp_ns(message, "start_time", path=path("start_time")) or 0
        end_ns = requests.timestamp_ns(message, "end_time", path=path("end_time")) or 0
        for name, value in (("start_time", start_ns), ("end_time", end_ns)):
            if value < 0:
                raise InvalidArgumentError.single(path(name), "must not be before 1970")
        if end_ns and start_ns >= end_ns:
            raise InvalidArgumentError.single(path("end_time"), "must be after start_time")
        if len(message.actor) > 256:
            raise InvalidArgumentError.single(path("actor"), "is longer than 256 characters")
        kind = requests.optional_segment(path("kind"), message.kind) or ""
        return cls(
            tenant=requests.optional_segment(path("tenant"), message.tenant),
            environment=requests.optional_segment(path("environment"), message.environment) or "",
            service=requests.optional_segment(path("service"), message.service) or "",
            key_prefix=requests.optional_key_prefix(path("key_prefix"), message.key_prefix),
            actor=message.actor,
            start_ns=start_ns,
            end_ns=end_ns,
            start_revision=message.start_revision,
            end_revision=message.end_revision,
            kind=kind,
        )

    def scope(self) -> tuple[str, ...]:
        """What a page token is bound to: every filter."""
        return tuple(
            str(v)
            for v in (
                self.tenant or "",
                self.environment,
                self.service,
                self.key_prefix,
                self.actor,
                self.start_ns,
                self.end_ns,
                self.start_revision,
                self.end_revision,
                self.kind,
            )
        )

    def matches(self, record: audit_pb2.AuditRecord, revision: int) -> bool:
        if self.start_revision and revision < self.start_revision:
            return False
        if self.end_revision and revision > self.end_revision:
            return False
        if self.actor and record.actor != self.actor:
            return False
        if self.kind and (record.kind or "config") != self.kind:
            return False
        if self.start_ns or self.end_ns:
            at = record.time.ToNanoseconds()
            if at < self.start_ns or (self.end_ns and at >= self.end_ns):
                return False
        if self.environment or self.service or self.key_prefix:
            if not record.HasField("key"):
                return False
            key = record.key
            return (
                (not self.environment or key.environment == self.environment)
                and (not self.service or key.service == self.service)
                and key.key.startswith(self.key_prefix)
            )
        return True


@dataclass(frozen=True)
class AuditPage:
    """Matching entries, where to continue (None: the end) and the revision read at."""

    entries: list[audit_query_pb2.AuditEntry]
    next_position: str | None
    revision: int


class AuditReader:
    """Scans one tenant's (or the installation's) audit trail."""

    def __init__(self, etcd: EtcdPort, keyspace: Keyspace) -> None:
        self._etcd = etcd
        self._ks = keyspace

    def _bounds(self, query: AuditQuery, after: str | None) -> tuple[bytes, bytes, bytes]:
        prefix = (
            self._ks.audit_prefix(query.tenant)
            if query.tenant is not None
            else self._ks.sys_audit_prefix
        )
        low = query.start_ns - _ID_SLACK_NS
        start = prefix + f"{low:020d}".encode() if low > 0 else prefix
        if after is not None:
            start = max(start, prefix + after.encode() + b"\0")
        end = (
            prefix + f"{query.end_ns + _ID_SLACK_NS:020d}".encode()
            if query.end_ns
            else prefix_range_end(prefix)
        )
        return prefix, start, end

    async def page(
        self,
        query: AuditQuery,
        after: str | None,
        size: int,
        *,
        timeout: float,
    ) -> AuditPage:
        """Up to ``size`` matching entries after position ``after`` (a record id)."""
        prefix, start, end = self._bounds(query, after)

        def accept(kv: Any) -> audit_query_pb2.AuditEntry | None:
            record = audit_pb2.AuditRecord.FromString(kv.value)
            revision = int(kv.mod_revision)
            if not query.matches(record, revision):
                return None
            return audit_query_pb2.AuditEntry(record=record, revision=revision)

        page = await scan.filtered_page(self._etcd, start, end, size, accept, timeout=timeout)
        position = page.last_key[len(prefix) :].decode() if page.last_key is not None else None
        return AuditPage(page.items, position, page.revision)

    async def all(
        self, query: AuditQuery, *, timeout: float
    ) -> AsyncIterator[audit_query_pb2.AuditEntry]:
        """Every matching entry, page by page (for exports)."""
        after: str | None = None
        while True:
            page = await self.page(query, after, scan.RANGE_PAGE, timeout=timeout)
            for entry in page.entries:
                yield entry
            if page.next_position is None:
                return
            after = page.next_position
