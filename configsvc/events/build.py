"""Turns audit records into ``ConfigurationUpdatedEvent`` messages.

The audit record has digests and versions but never a value; the value and
the previous version's revision come from the history copies written in the
same transactions (``hist/<env>/<svc>/<key>/<version>``), read for a whole
chunk in a few read-only Txns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aetcd import rpc

from configsvc.events.tail import AuditItem
from configsvc.model.keys import ConfigKey
from configsvc.store.codec import decode_stored
from configsvc.store.keyspace import Keyspace
from configsvc.store.ports import EtcdPort
from configsvc.v1 import config_pb2, events_pb2

#: Range ops per read-only Txn (etcd's default limit is 128 operations).
_OPS_PER_TXN = 100
CONFIG_KIND = "config"


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    """An event ready to send: where it goes and what it says."""

    revision: int
    partition_key: str
    properties: dict[str, str]
    event: events_pb2.ConfigurationUpdatedEvent

    @property
    def payload(self) -> bytes:
        return bytes(self.event.SerializeToString())


def publishable(item: AuditItem) -> bool:
    """Changes are events; audited reads (OPERATION_ACCESS) are not."""
    return item.record.operation != config_pb2.OPERATION_ACCESS


def _config_key(item: AuditItem) -> ConfigKey | None:
    record = item.record
    if record.kind not in ("", CONFIG_KIND) or not record.HasField("key"):
        return None
    k = record.key
    return ConfigKey(k.tenant, k.environment, k.service, k.key)


def partition_key(item: AuditItem) -> str:
    """The config key ("tenant/env/service/key"), or "kind:tenant/name" for other objects."""
    key = _config_key(item)
    if key is not None:
        return str(key)
    record = item.record
    return f"{record.kind}:{record.tenant}/{record.name}"


class EventBuilder:
    """Builds events for chunks of audit items."""

    def __init__(
        self, etcd: EtcdPort, keyspace: Keyspace, withhold: Callable[[ConfigKey, str], bool]
    ) -> None:
        self._etcd = etcd
        self._ks = keyspace
        self._withhold = withhold

    async def build(self, items: Sequence[AuditItem]) -> list[OutgoingEvent]:
        wanted = [item for item in items if publishable(item)]
        history = await self._history(wanted)
        events = []
        index = 0
        for position, item in enumerate(wanted):
            # Position of the record within its revision: 0 unless one Txn wrote several.
            same = position > 0 and wanted[position - 1].revision == item.revision
            index = index + 1 if same else 0
            events.append(self._event(item, index, history.get(item.key, {})))
        return events

    async def _history(self, items: Sequence[AuditItem]) -> dict[bytes, dict[int, Any]]:
        """audit key -> {version: hist kv} for the old and new version of each config change."""
        ops: list[tuple[bytes, Any]] = []
        for item in items:
            key = _config_key(item)
            if key is None:
                continue
            first = max(1, item.record.before_version)
            ops.append(
                (
                    item.key,
                    rpc.RequestOp(
                        request_range=rpc.RangeRequest(
                            key=self._ks.hist_key(key, first),
                            range_end=self._ks.hist_key(key, item.record.after_version) + b"\0",
                        )
                    ),
                )
            )
        found: dict[bytes, dict[int, Any]] = {}
        for start in range(0, len(ops), _OPS_PER_TXN):
            part = ops[start : start + _OPS_PER_TXN]
            response = await self._etcd.txn(rpc.TxnRequest(success=[op for _, op in part]))
            for (audit_key, _), result in zip(part, response.responses, strict=True):
                found[audit_key] = {
                    self._ks.version_from_hist_key(kv.key): kv for kv in result.response_range.kvs
                }
        return found

    def _event(self, item: AuditItem, index: int, history: dict[int, Any]) -> OutgoingEvent:
        record = item.record
        key = _config_key(item)
        event = events_pb2.ConfigurationUpdatedEvent(
            event_id=f"{item.revision}-{index}",
            revision=item.revision,
            new_revision=item.revision,
            tenant=key.tenant if key is not None else record.tenant,
            change_type=record.operation,
            old_version=record.before_version,
            new_version=record.after_version,
            old_digest=record.before_digest,
            new_digest=record.after_digest,
            actor=record.actor,
            reason=record.reason,
            time=record.time,
            trace_id=record.trace_id,
            kind=record.kind or CONFIG_KIND,
            name=record.name,
            audit_id=record.id,
            rolled_back_to=record.rolled_back_to,
        )
        if key is not None:
            event.key.CopyFrom(record.key)
            event.scope = f"{key.environment}/{key.service}"
            old = history.get(record.before_version)
            if old is not None:
                event.old_revision = int(old.mod_revision)
            new = history.get(record.after_version)
            if new is not None and record.operation != config_pb2.OPERATION_DELETE:
                value = decode_stored(new.value).value
                if self._withhold(key, value):
                    event.value_withheld = True
                else:
                    event.new_value = value
        properties = {
            "revision": str(item.revision),
            "event_id": event.event_id,
            "tenant": event.tenant,
            "kind": event.kind,
        }
        return OutgoingEvent(item.revision, partition_key(item), properties, event)
