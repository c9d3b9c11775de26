"""Filtered scans of the audit trail in etcd.

Audit keys end in a time-ordered id (``<nanoseconds>-<random>``), so a time
range is a key range; every other filter (actor, key prefix, revision range)
is applied here while scanning. etcd's own ``min_mod_revision`` filter is not
used on purpose: with any filter set etcd reads the whole range before
applying ``limit``, while a plain paged range reads only what a page needs.
Each call scans at most ``budget`` records, so one request never reads an
unbounded trail; a page may therefore be short, with a token to continue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from aetcd import rpc

from configsvc.api import requests
from configsvc.errors import InvalidArgumentError
from configsvc.store.etcd import EtcdClient, prefix_range_end
from configsvc.store.keyspace import Keyspace
from configsvc.v1 import audit_pb2, audit_query_pb2

#: Records read from etcd per range call, and at most per request.
RANGE_PAGE = 500
SCAN_BUDGET = 10_000
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

    @classmethod
    def parse(cls, message: audit_query_pb2.AuditFilter, field: str = "filter") -> AuditQuery:
        def path(name: str) -> str:
            return f"{field}.{name}"

        for name in ("start_revision", "end_revision"):
            if getattr(message, name) < 0:
                raise InvalidArgumentError.single(path(name), "must be 0 (unbounded) or more")
        if message.end_revision and message.start_revision > message.end_revision:
            raise InvalidArgumentError.single(
                path("end_revision"), f"is {message.end_revision}, before start_revision "
                f"{message.start_revision}")
        start_ns = message.start_time.ToNanoseconds() if message.HasField("start_time") else 0
        end_ns = message.end_time.ToNanoseconds() if message.HasField("end_time") else 0
        if start_ns < 0 or end_ns < 0:
            raise InvalidArgumentError.single(path("start_time"), "must not be before 1970")
        if end_ns and start_ns >= end_ns:
            raise InvalidArgumentError.single(path("end_time"), "must be after start_time")
        if len(message.actor) > 256:
            raise InvalidArgumentError.single(path("actor"), "is longer than 256 characters")
        return cls(
            tenant=requests.optional_segment(path("tenant"), message.tenant),
            environment=requests.optional_segment(path("environment"), message.environment) or "",
            service=requests.optional_segment(path("service"), message.service) or "",
            key_prefix=requests.optional_key_prefix(path("key_prefix"), message.key_prefix),
            actor=message.actor, start_ns=start_ns, end_ns=end_ns,
            start_revision=message.start_revision, end_revision=message.end_revision,
        )

    def scope(self) -> tuple[str, ...]:
        """What a page token is bound to: every filter."""
        return tuple(str(v) for v in (self.tenant or "", self.environment, self.service,
                                      self.key_prefix, self.actor, self.start_ns, self.end_ns,
                                      self.start_revision, self.end_revision))

    def matches(self, record: audit_pb2.AuditRecord, revision: int) -> bool:
        if self.start_revision and revision < self.start_revision:
            return False
        if self.end_revision and revision > self.end_revision:
            return False
        if self.actor and record.actor != self.actor:
            return False
        if self.start_ns or self.end_ns:
            at = record.time.ToNanoseconds()
            if at < self.start_ns or (self.end_ns and at >= self.end_ns):
                return False
        if self.environment or self.service or self.key_prefix:
            if not record.HasField("key"):
                return False
            key = record.key
            return ((not self.environment or key.environment == self.environment)
                    and (not self.service or key.service == self.service)
                    and key.key.startswith(self.key_prefix))
        return True


@dataclass(frozen=True)
class ScanPage:
    """Matching entries, where to continue (None: the end) and the revision read at."""

    entries: list[audit_query_pb2.AuditEntry]
    next_position: str | None
    revision: int


class AuditReader:
    """Scans one tenant's (or the installation's) audit trail."""

    def __init__(self, etcd: EtcdClient, keyspace: Keyspace) -> None:
        self._etcd = etcd
        self._ks = keyspace

    def _bounds(self, query: AuditQuery, after: str | None) -> tuple[bytes, bytes, bytes]:
        prefix = (self._ks.audit_prefix(query.tenant) if query.tenant is not None
                  else self._ks.sys_audit_prefix)
        low = query.start_ns - _ID_SLACK_NS
        start = prefix + f"{low:020d}".encode() if low > 0 else prefix
        if after is not None:
            start = max(start, prefix + after.encode() + b"\0")
        end = (prefix + f"{query.end_ns + _ID_SLACK_NS:020d}".encode() if query.end_ns
               else prefix_range_end(prefix))
        return prefix, start, end

    async def page(
        self, query: AuditQuery, after: str | None, size: int, *, timeout: float,
        budget: int | None = None,
    ) -> ScanPage:
        """Up to ``size`` matching entries after position ``after`` (a record id)."""
        budget = SCAN_BUDGET if budget is None else budget
        prefix, start, end = self._bounds(query, after)
        entries: list[audit_query_pb2.AuditEntry] = []
        revision = 0
        scanned = 0
        while start < end:
            if scanned >= budget:  # scanned enough for one call: continue after the last key
                return ScanPage(entries, start[len(prefix):-1].decode(), revision)
            response = await self._etcd.range(
                rpc.RangeRequest(key=start, range_end=end, revision=revision,
                                 limit=min(RANGE_PAGE, budget - scanned)), timeout=timeout)
            revision = revision or int(response.header.revision)
            for kv in response.kvs:
                scanned += 1
                record = audit_pb2.AuditRecord()
                record.ParseFromString(kv.value)
                mod_revision = int(kv.mod_revision)
                if query.matches(record, mod_revision):
                    entries.append(audit_query_pb2.AuditEntry(record=record,
                                                              revision=mod_revision))
                    if len(entries) == size:
                        more = response.more or kv is not response.kvs[-1]
                        return ScanPage(entries, kv.key[len(prefix):].decode() if more
                                        else None, revision)
            if not response.more or not response.kvs:
                return ScanPage(entries, None, revision)
            start = response.kvs[-1].key + b"\0"
        return ScanPage(entries, None, revision)

    async def all(self, query: AuditQuery, *, timeout: float) -> AsyncIterator[
            audit_query_pb2.AuditEntry]:
        """Every matching entry, page by page (for exports)."""
        after: str | None = None
        while True:
            page = await self.page(query, after, RANGE_PAGE, timeout=timeout)
            for entry in page.entries:
                yield entry
            if page.next_position is None:
                return
            after = page.next_position
