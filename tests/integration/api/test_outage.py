"""etcd outages and compaction: UNAVAILABLE naming etcd, NOT_SERVING, then self-recovery."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from aetcd import rpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from configsvc.store.etcd import EtcdClient
from configsvc.v1 import config_pb2, tenant_pb2
from tests.helpers import PrivateStack, Stack, backend_of, ckey, close_stack, open_stack


async def health_status(stack: Stack, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(stack.channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(response.status)


async def wait_until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached in time")


async def test_etcd_outage_gives_unavailable_then_recovers(private_stack: PrivateStack) -> None:
    stack, etcd = private_stack.stack, private_stack.etcd
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    key = ckey("acme", "k")
    await stack.config.Put(config_pb2.PutRequest(key=key, value="1"))
    assert await health_status(stack) == health_pb2.HealthCheckResponse.SERVING
    assert await health_status(stack, "configsvc.v1.ConfigService") == (
        health_pb2.HealthCheckResponse.SERVING
    )

    etcd.stop()

    async def not_serving() -> bool:
        return await health_status(stack) == health_pb2.HealthCheckResponse.NOT_SERVING

    await wait_until(not_serving)
    calls = {
        "Put": lambda: stack.config.Put(config_pb2.PutRequest(key=key, value="2"), timeout=8),
        "Get": lambda: stack.config.Get(config_pb2.GetRequest(key=key), timeout=8),
        "StrongGet": lambda: stack.config.Get(
            config_pb2.GetRequest(key=key, consistency=config_pb2.READ_CONSISTENCY_STRONG),
            timeout=8,
        ),
        "List": lambda: stack.config.List(config_pb2.ListRequest(tenant="acme"), timeout=8),
        "History": lambda: stack.config.History(config_pb2.HistoryRequest(key=key), timeout=8),
        "Delete": lambda: stack.config.Delete(config_pb2.DeleteRequest(key=key), timeout=8),
        "CreateTenant": lambda: stack.tenants.CreateTenant(
            tenant_pb2.CreateTenantRequest(name="other"), timeout=8
        ),
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await call()
        assert exc.value.code() == grpc.StatusCode.UNAVAILABLE, (name, exc.value.details())
        assert "etcd" in (exc.value.details() or ""), name
        assert backend_of(exc.value) == "etcd", name
        # Not a hang: each failed well inside its 8 s deadline (no DEADLINE_EXCEEDED).
        assert time.monotonic() - started < 8

    # A caller that prefers old data to none can still read.
    stale = await stack.config.Get(
        config_pb2.GetRequest(key=key, consistency=config_pb2.READ_CONSISTENCY_STALE_OK)
    )
    assert stale.stale and stale.entry.value == "1"

    etcd.start(timeout=30)

    async def serving() -> bool:
        return await health_status(stack) == health_pb2.HealthCheckResponse.SERVING

    await wait_until(serving)
    written = await stack.config.Put(config_pb2.PutRequest(key=key, value="3"))
    got = await stack.config.Get(config_pb2.GetRequest(key=key))
    assert got.entry.value == "3" and got.revision >= written.revision and not got.stale


async def test_mirror_resyncs_after_compaction_while_disconnected(
    private_stack: PrivateStack,
) -> None:
    """Changes and a compaction happen while the mirror is away: it resyncs, no stale data."""
    stack, etcd = private_stack.stack, private_stack.etcd
    server = stack.server
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    await stack.config.Put(config_pb2.PutRequest(key=ckey("acme", "stays"), value="1"))
    await stack.config.Put(config_pb2.PutRequest(key=ckey("acme", "goes"), value="1"))
    resyncs = server.mirror.stats.resyncs

    # Take the mirror away from etcd, then change and compact behind its back
    # through a second server that shares the etcd.
    await server.mirror.stop()
    other = await open_stack(etcd.endpoint, server.config.root_prefix)
    try:
        await other.config.Put(config_pb2.PutRequest(key=ckey("acme", "stays"), value="2"))
        await other.config.Delete(config_pb2.DeleteRequest(key=ckey("acme", "goes")))
        last = await other.config.Put(config_pb2.PutRequest(key=ckey("acme", "new"), value="3"))
        client = EtcdClient([etcd.endpoint])
        await client.compact(last.revision)
        await client.close()
    finally:
        await close_stack(other)

    server.mirror.start()
    assert await server.mirror.wait_synced(15)
    assert server.mirror.stats.resyncs == resyncs + 1
    listed = await stack.config.List(config_pb2.ListRequest(tenant="acme"))
    assert {e.key.key: e.value for e in listed.entries} == {"stays": "2", "new": "3"}
    assert listed.revision >= last.revision


async def test_mirror_recovers_from_etcd_crash_with_writes_and_compaction_meanwhile(
    private_stack: PrivateStack,
) -> None:
    """etcd is SIGKILLed and restarted; writes and a compaction race the mirror's reconnect."""
    stack, etcd = private_stack.stack, private_stack.etcd
    server = stack.server
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    await stack.config.Put(config_pb2.PutRequest(key=ckey("acme", "a"), value="1"))
    failures = server.mirror.stats.watch_failures

    etcd.kill()
    etcd.start(timeout=30)
    # Write behind the mirror's back with the raw etcd API and compact at once.
    client = EtcdClient([etcd.endpoint])
    head = await client.range(rpc.RangeRequest(key=b"/configsvc/sys/commit"))
    put = await client.txn(
        rpc.TxnRequest(
            success=[
                rpc.RequestOp(request_put=rpc.PutRequest(key=b"/configsvc/sys/commit", value=b""))
            ]
        )
    )
    await client.compact(int(put.header.revision))
    await client.close()
    assert int(put.header.revision) > int(head.header.revision)

    async def caught_up() -> bool:
        return server.mirror.synced and server.mirror.revision >= int(put.header.revision)

    await wait_until(caught_up)
    assert server.mirror.stats.watch_failures > failures
    got = await stack.config.Get(
        config_pb2.GetRequest(key=ckey("acme", "a"), consistency=config_pb2.READ_CONSISTENCY_STRONG)
    )
    assert got.entry.value == "1"
