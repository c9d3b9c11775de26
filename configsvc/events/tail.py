"""Reads the audit records in revision order, from a cursor on, forever.

One etcd watch over the root prefix from ``cursor + 1``: etcd replays its
history first, so catching up and following are the same loop. Audit keys
are filtered out of the event stream here (an event never needs a second
read to know it is an audit record). If the cursor revision has been
compacted away, the watch is refused; the tail then range-reads every audit
record with ``mod_revision > cursor`` at one revision R (audit keys are never
deleted, so the current state holds them all), and watches on from R + 1.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

from aetcd import rpc

from configsvc.errors import BackendUnavailableError
from configsvc.store.etcd import BACKEND, CompactedError, prefix_range_end
from configsvc.store.keyspace import Keyspace
from configsvc.store.ports import EtcdPort
from configsvc.v1 import audit_pb2

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AuditItem:
    """One audit record and the revision it committed at."""

    revision: int
    key: bytes
    record: audit_pb2.AuditRecord


@dataclass(frozen=True, slots=True)
class TailChunk:
    """Audit records of whole revisions, and how far the tail has read.

    ``through`` may be past the last item: revisions without audit records
    (tenant creation, the publisher's own keys) are read too, and once this
    chunk is published the cursor may move to ``through``.
    """

    items: tuple[AuditItem, ...]
    through: int


def is_audit_key(ks: Keyspace, raw: bytes) -> bool:
    """``<root>/audit/...`` or ``<root>/t/<tenant>/audit/...``."""
    if raw.startswith(ks.sys_audit_prefix):
        return True
    tenants = ks.all_prefix + b"t/"
    if not raw.startswith(tenants):
        return False
    parts = raw[len(tenants) :].split(b"/", 2)
    return len(parts) == 3 and parts[1] == b"audit"


#: Tails that keep a cursor (the Pulsar publisher, the webhook dispatcher).
TAIL_NAMES = ("publisher", "webhooks")


def bookkeeping_prefixes(ks: Keyspace) -> tuple[bytes, ...]:
    """Keys the tails themselves write (leader keys, cursors).

    Their changes never move a cursor: otherwise every cursor write would be
    read as progress and cause another write, by the same tail or the other.
    """
    return tuple(ks.sys_key(name, "") for name in TAIL_NAMES)


def _item(kv: Any) -> AuditItem:
    record = audit_pb2.AuditRecord()
    record.ParseFromString(kv.value)
    return AuditItem(int(kv.mod_revision), bytes(kv.key), record)


def _ordered(items: Iterable[AuditItem]) -> tuple[AuditItem, ...]:
    """Revision order, and within a revision key order (the time-ordered ids)."""
    return tuple(sorted(items, key=lambda item: (item.revision, item.key)))


class AuditTail:
    """Yields ``TailChunk``s in revision order starting after a cursor."""

    def __init__(self, etcd: EtcdPort, keyspace: Keyspace) -> None:
        self._etcd = etcd
        self._ks = keyspace
        self._ignore = bookkeeping_prefixes(keyspace)

    async def follow(self, cursor: int) -> AsyncIterator[TailChunk]:
        """Chunks after ``cursor``, forever; raises BackendUnavailableError when etcd is lost."""
        position = cursor
        while True:
            try:
                async for chunk in self._watch(position):
                    position = chunk.through
                    yield chunk
            except CompactedError:
                chunk = await self.catch_up(position)
                log.info(
                    "publisher cursor %d was compacted; read %d audit records up to %d",
                    position,
                    len(chunk.items),
                    chunk.through,
                )
                position = chunk.through
                yield chunk

    async def _watch(self, position: int) -> AsyncIterator[TailChunk]:
        create = rpc.WatchCreateRequest(
            key=self._ks.all_prefix,
            range_end=prefix_range_end(self._ks.all_prefix),
            start_revision=position + 1,
            filters=[rpc.WatchCreateRequest.NODELETE],
        )
        async for response in self._etcd.watch(create):
            if response.canceled:
                if response.compact_revision:
                    raise CompactedError(int(response.compact_revision))
                raise BackendUnavailableError(BACKEND, f"watch canceled: {response.cancel_reason}")
            items = []
            through = position
            for event in response.events:
                kv = event.kv
                if kv.key.startswith(self._ignore):
                    continue
                through = max(through, int(kv.mod_revision))
                if is_audit_key(self._ks, kv.key):
                    items.append(_item(kv))
            if through > position:
                position = through
                yield TailChunk(_ordered(items), through)

    async def catch_up(self, cursor: int) -> TailChunk:
        """Every audit record with mod_revision > ``cursor``, read at one revision."""
        head = await self._etcd.range(rpc.RangeRequest(key=self._ks.commit_marker))
        revision = int(head.header.revision)
        tenants = await self._etcd.range_all(self._ks.tenants_prefix, revision=revision)
        prefixes = [self._ks.sys_audit_prefix]
        prefixes += [
            self._ks.audit_prefix(self._ks.tenant_from_key(kv.key) or "") for kv in tenants
        ]
        items: list[AuditItem] = []
        for prefix in prefixes:
            kvs = await self._etcd.range_all(prefix, revision=revision)
            items.extend(_item(kv) for kv in kvs if int(kv.mod_revision) > cursor)
        return TailChunk(_ordered(items), revision)
