"""The mirror's records: ``sys/...`` keys and tenant RECORD_KINDS follow etcd like entries."""

from __future__ import annotations

import pytest
from aetcd import rpc

from configsvc.errors import ConflictError, NotFoundError
from configsvc.store import keyspace
from configsvc.store.etcd import EtcdClient
from configsvc.store.mirror import RecordBatch
from configsvc.store.writer import RecordChange
from configsvc.v1 import audit_pb2, config_pb2, tenant_pb2
from tests.helpers import PrivateStack, close_stack, open_stack


async def _put(client: EtcdClient, key: bytes, value: bytes) -> int:
    response = await client.txn(
        rpc.TxnRequest(success=[rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value))])
    )
    return int(response.header.revision)


async def _delete(client: EtcdClient, key: bytes) -> int:
    response = await client.txn(
        rpc.TxnRequest(
            success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key))]
        )
    )
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
            (sys_key, None),
            (widget, b"green"),
        ]
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


async def test_commit_records_is_all_or_nothing_with_audit(
    private_stack: PrivateStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyspace, "RECORD_KINDS", ("widget",))
    stack = private_stack.stack
    server = stack.server
    writer, mirror, ks = server.writer, server.mirror, server.keyspace
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    a, b = ks.record_key("acme", "widget", "a"), ks.record_key("acme", "widget", "b")

    audit = audit_pb2.AuditRecord(
        kind="widget", tenant="acme", name="a", actor="tester", operation=config_pb2.OPERATION_PUT
    )
    rev = await writer.commit_records(
        "acme", [RecordChange(a, b"1", 0), RecordChange(b, b"2")], [audit], timeout=5
    )
    record = mirror.record(a)
    assert record is not None and record.mod_revision == rev  # read-your-writes
    client = EtcdClient([private_stack.etcd.endpoint])
    try:
        stored = await client.range_all(ks.audit_prefix("acme"))
        audits = [audit_pb2.AuditRecord.FromString(kv.value) for kv in stored]
        # Creating the tenant was audited too, in its own Txn.
        assert (audits[0].kind, audits[0].name) == ("tenant", "acme")
        mine = [r for r in audits if r.kind == "widget"]
        assert len(mine) == 1 and mine[0].name == "a" and mine[0].id == audit.id
        assert int(stored[-1].mod_revision) == rev and mine[0].time.seconds > 0

        # A stale expectation on one key: nothing of the Txn is written.
        with pytest.raises(
            ConflictError, match=f"widget a changed: expected revision 1, current revision {rev}"
        ):
            await writer.commit_records(
                "acme",
                [RecordChange(b, None), RecordChange(a, b"9", 1, label="widget a")],
                [],
                timeout=5,
            )
        assert mirror.record(b) is not None
        assert len(await client.range_all(ks.audit_prefix("acme"))) == len(stored)

        with pytest.raises(NotFoundError):
            await writer.commit_records(
                "nope", [RecordChange(ks.record_key("nope", "widget", "x"), b"1")], [], timeout=5
            )

        sys_key = ks.sys_key("thing", "one")
        await writer.commit_records(
            None,
            [RecordChange(sys_key, b"s", 0)],
            [audit_pb2.AuditRecord(kind="thing", name="one")],
            timeout=5,
        )
        kinds = [
            audit_pb2.AuditRecord.FromString(kv.value).kind
            for kv in await client.range_all(ks.sys_audit_prefix)
        ]
        assert [k for k in kinds if k != "api-key"] == ["thing"]  # and the bootstrap key's
        rev2 = await writer.commit_records("acme", [RecordChange(a, None, rev)], [], timeout=5)
        assert mirror.record(a) is None and rev2 > rev
    finally:
        await client.close()

    with pytest.raises(ValueError):
        await writer.commit_records("acme", [], [], timeout=5)
    # Audit-only (an audited read): still one Txn that needs the tenant.
    rev3 = await writer.commit_records(
        "acme",
        [],
        [
            audit_pb2.AuditRecord(
                kind="widget", tenant="acme", name="a", operation=config_pb2.OPERATION_ACCESS
            )
        ],
        timeout=5,
    )
    assert rev3 > rev2
    with pytest.raises(NotFoundError):
        await writer.commit_records("nope", [], [audit_pb2.AuditRecord(kind="widget")], timeout=5)
