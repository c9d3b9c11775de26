"""Election fencing, compaction catch-up, non-config records and the status without a leader."""

from __future__ import annotations

import asyncio
from pathlib import Path

from configsvc.auth.admin import BOOTSTRAP_MARKER
from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.pulsar import PulsarLite
from configsvc.events.election import Election
from configsvc.events.publisher import LeadershipLostError, Publisher
from configsvc.events.tail import AuditTail, is_audit_key
from configsvc.store.etcd import EtcdClient
from configsvc.store.keyspace import Keyspace
from configsvc.store.writer import RecordChange
from configsvc.v1 import audit_pb2, config_pb2, events_pb2, events_pb2_grpc, tenant_pb2
from tests.conftest import ckey
from tests.helpers import PrivateStack, close_stack, open_stack
from tests.integration.events.support import Collector, event_settings, new_topic


async def test_deposed_leader_cannot_move_the_cursor(etcd: EtcdServer, tmp_path: Path) -> None:
    client = EtcdClient([etcd.endpoint])
    ks = Keyspace(f"/election-{tmp_path.name}")
    publisher = Publisher(client, ks, event_settings("pulsar://127.0.0.1:1", "t"))
    key = publisher.leader_key
    first = Election(client, key, "first", ttl=2)
    second = Election(client, key, "second", ttl=2)
    try:
        old = await first.try_acquire()
        assert old is not None
        assert await second.try_acquire() is None
        assert (await second.current_leader())[0] == "first"
        await publisher._write_cursor(old, 5)
        assert await publisher.read_cursor() == 5
        # The first leader's lease ends behind its back; the second one takes over.
        await client.lease_revoke(old.lease_id)
        new = await second.acquire((0.05, 0.2))
        assert new.term > old.term
        try:
            await publisher._write_cursor(old, 9)
        except LeadershipLostError:
            pass
        else:
            raise AssertionError("a deposed leader moved the cursor")
        assert old.lost.is_set()
        assert await publisher.read_cursor() == 5
        await publisher._write_cursor(new, 7)
        assert await publisher.read_cursor() == 7
        await new.resign()
        assert (await second.current_leader())[0] == ""
    finally:
        await client.close()


async def test_tail_reads_compacted_history_from_the_audit_keys(
    private_stack: PrivateStack,
) -> None:
    stack = private_stack.stack
    server = stack.server
    created = await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    revisions = [created.revision] + [
        (
            await stack.config.Put(config_pb2.PutRequest(key=ckey("acme", f"k{i}"), value=str(i)))
        ).revision
        for i in range(5)
    ]
    await server.etcd.compact(revisions[-1])
    tail = AuditTail(server.etcd, server.keyspace)
    chunks = tail.follow(1)  # revision 1 is compacted: the watch is refused
    chunk = await asyncio.wait_for(anext(chunks), 30)
    # The installation trail comes too: auth's bootstrap (admin key) came first.
    bootstrap = server.mirror.record(server.keyspace.sys_key(*BOOTSTRAP_MARKER))
    assert bootstrap is not None
    assert [item.revision for item in chunk.items] == [bootstrap.mod_revision, *revisions]
    assert chunk.through >= revisions[-1]
    assert all(is_audit_key(server.keyspace, item.key) for item in chunk.items)
    later = await stack.config.Put(config_pb2.PutRequest(key=ckey("acme", "k9"), value="9"))
    chunk = await asyncio.wait_for(anext(chunks), 30)
    assert [item.revision for item in chunk.items] == [later.revision]
    await chunks.aclose()


async def test_records_become_events_and_reads_do_not(
    etcd: EtcdServer,
    pulsar_broker: PulsarLite,
    tmp_path: Path,
) -> None:
    topic = new_topic()
    collector = Collector(pulsar_broker.url, topic)
    stack = await open_stack(
        etcd.endpoint, f"/records-{tmp_path.name}", events=event_settings(pulsar_broker.url, topic)
    )
    try:
        server = stack.server
        await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
        ks = server.keyspace
        change = RecordChange(ks.record_key("acme", "widget", "blue"), b"{}", 0, "widget blue")
        made = audit_pb2.AuditRecord(
            kind="widget",
            tenant="acme",
            name="blue",
            operation=config_pb2.OPERATION_PUT,
            actor="tester",
        )
        read = audit_pb2.AuditRecord(
            kind="secret",
            tenant="acme",
            name="db",
            operation=config_pb2.OPERATION_ACCESS,
            actor="tester",
        )
        revision = await server.writer.commit_records("acme", [change], [made, read], timeout=5)
        system = await server.writer.commit_records(
            None,
            [RecordChange(ks.sys_key("widgets", "x"), b"1")],
            [audit_pb2.AuditRecord(kind="api-key", name="x", operation=config_pb2.OPERATION_PUT)],
            timeout=5,
        )
        assert await collector.wait_for([revision, system]) == set()
        events = {e.event_id: (k, e) for k, e, _ in collector.received.events}
        key, event = events[f"{revision}-0"]
        assert key == "widget:acme/blue" and event.kind == "widget" and event.name == "blue"
        assert not event.HasField("key") and not event.HasField("new_value")
        assert f"{revision}-1" not in events  # the audited read is not a change event
        assert events[f"{system}-0"][0] == "api-key:/x"
    finally:
        await close_stack(stack)
        collector.close()


async def test_status_without_any_publisher(etcd: EtcdServer, tmp_path: Path) -> None:
    stack = await open_stack(etcd.endpoint, f"/nopub-{tmp_path.name}")
    try:
        await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
        await stack.config.Put(config_pb2.PutRequest(key=ckey("acme", "k"), value="1"))
        status = await events_pb2_grpc.EventServiceStub(stack.channel).GetPublisherStatus(
            events_pb2.GetPublisherStatusRequest()
        )
        assert not status.healthy and "no publisher" in status.reason
        assert status.backlog_revisions > 0 and not status.leader and not status.is_leader
    finally:
        await close_stack(stack)
