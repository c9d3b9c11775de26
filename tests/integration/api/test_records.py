"""The mirror's records: ``sys/...`` keys and tenant RECORD_KINDS follow etcd like entries."""

from __future__ import annotations

import pytest
from aetcd import rpc

from configsvc.store import keyspace
from configsvc.store.etcd import EtcdClient
from configsvc.store.mirror import RecordBatch
from configsvc.v1 import tenant_pb2
from tests.helpers import PrivateStack, close_stack, open_stack


async def _put(client: EtcdClient, key: bytes, value: bytes) -> int:
    response = await client.txn(rpc.TxnRequest(success=[
        rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value))]))
    return int(response.header.revision)


async def _delete(client: EtcdClient, key: bytes) -> int:
    response = await client.txn(rpc.TxnRequest(success=[
        rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key))]))
    return int(response.header.revision)


async def test_records_follow_etcd_and_survive_a_resync(
    private_stack: PrivateStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyspace, "RECORD_KINDS", ("widget",))
    stack, etcd = private_stack.stack, private_stack.etcd
    mirror, ks = stack.server.mirror, stack.server.keyspace
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    batches: list[RecordBatch] = []
    mirror.add_record_listener(batches.append)
    client = EtcdClient([etcd.endpoint])
    try:
        sys_key = ks.sys_key("cursor", "publisher")
        widget = ks.record_key("acme", "widget", "w1")
        other = ks.record_key("acme", "unregistered", "x")
        rev1 = await _put(client, sys_key, b"7")
        rev2 = await _put(client, widget, b"blue")
        await _put(client, other, b"ignored")
        assert await mirror.wait_applied(rev2 + 1, 10)
        record = mirror.record(widget)
        assert record is not None and (record.value, record.mod_revision) == (b"blue", rev2)
        assert mirror.record(other) is None
        assert [raw for raw, _ in mirror.records(ks.record_prefix("acme", "widget"))] == [widget]
        assert [(b.revision, b.changes[0][0]) for b in batches] == [(rev1, sys_key), (rev2, widget)]
        generation = mirror.records_generation

        rev3 = await _delete(client, widget)
        assert await mirror.wait_applied(rev3, 10)
        assert mirror.record(widget) is None
        assert batches[-1].revision == rev3 and batches[-1].changes == ((widget, None),)
        assert mirror.records_generation == generation + 1

        # Behind the mirror's back: the resync reports exactly the difference.
        await mirror.stop()
        await _put(client, widget, b"green")
        rev5 = await _delete(client, sys_key)
        mirror.start()
        assert await mirror.wait_synced(15)
        assert await mirror.wait_applied(rev5, 10)
        last = batches[-1]
        assert last.revision >= rev5
        assert [(raw, r.value if r else None) for raw, r in last.changes] == [
            (sys_key, None), (widget, b"green")]
        assert mirror.record(ks.tenant_key("acme")) is not None  # tenants are sys records too
    finally:
        await client.close()


async def test_records_of_a_second_server_load_at_start(
    private_stack: PrivateStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyspace, "RECORD_KINDS", ("widget",))
    stack, etcd = private_stack.stack, private_stack.etcd
    ks = stack.server.keyspace
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    client = EtcdClient([etcd.endpoint])
    try:
        await _put(client, ks.record_key("acme", "widget", "a"), b"1")
    finally:
        await client.close()
    other = await open_stack(etcd.endpoint, stack.server.config.root_prefix)
    try:
        record = other.server.mirror.record(ks.record_key("acme", "widget", "a"))
        assert record is not None and record.value == b"1"
    finally:
        await close_stack(other)
