"""A tenant's layers and templates as they were at an older etcd revision (for Diff).

Read straight from etcd with ranges at that revision (etcd keeps old
revisions until it compacts them), never from the mirror, which only knows
the present.
"""

from __future__ import annotations

from configsvc.errors import FailedPreconditionError, InvalidArgumentError
from configsvc.hier import records
from configsvc.hier.resolver import SnapshotSource
from configsvc.hier.state import TenantState, template_of
from configsvc.resolve import LayerValue
from configsvc.store.codec import decode_stored
from configsvc.store.etcd import CompactedError
from configsvc.store.keyspace import Keyspace
from configsvc.store.ports import EtcdPort


async def read_at(
    etcd: EtcdPort,
    ks: Keyspace,
    tenant: str,
    revision: int,
    current: int,
    *,
    field: str,
    timeout: float,
) -> tuple[SnapshotSource, TenantState]:
    """The entries and templates/extends of ``tenant`` at ``revision``."""
    if revision > current:
        raise InvalidArgumentError.single(
            field, f"is {revision}, ahead of the current revision {current}"
        )
    try:
        cfg = await etcd.range_all(ks.cfg_prefix(tenant), revision=revision, timeout=timeout)
        templates = await etcd.range_all(
            ks.record_prefix(tenant, records.TEMPLATE), revision=revision, timeout=timeout
        )
        extends = await etcd.range_all(
            ks.record_prefix(tenant, records.EXTENDS), revision=revision, timeout=timeout
        )
    except CompactedError:
        raise FailedPreconditionError(
            f"{field} {revision} has been compacted by etcd; compare newer revisions "
            "(History keeps every version of each key)"
        ) from None
    scopes: dict[tuple[str, str], dict[str, LayerValue]] = {}
    for kv in cfg:
        key = ks.parse_cfg_key(bytes(kv.key))
        if key is None:
            continue
        scopes.setdefault((key.environment, key.service), {})[key.key] = LayerValue(
            decode_stored(kv.value).value, int(kv.mod_revision), str(key)
        )
    state = TenantState(tenant)
    for record in records.from_kvs(ks, tenant, records.TEMPLATE, templates):
        state.template_records[(record.name, record.version)] = record
        state.templates[(record.name, record.version)] = template_of(tenant, record)
    state.extends = {r.name: r for r in records.from_kvs(ks, tenant, records.EXTENDS, extends)}
    return SnapshotSource(scopes), state
