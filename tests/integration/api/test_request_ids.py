"""Idempotent writes: ``request_id`` on Put, Delete and Rollback (issue 17, item 12).

Against a real etcd: a retry with the same id writes nothing and answers the first
result, also when the first answer was lost after the commit (the client's deadline, a
server killed with SIGKILL) and on another replica; another id writes again; the same id
with another request is refused.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest
from aetcd import rpc

from configsvc.devstack import EtcdServer, free_port
from configsvc.model.keys import ConfigKey
from configsvc.store import idempotency
from configsvc.store.etcd import prefix_range_end
from configsvc.store.idempotency import IdempotencySettings
from configsvc.store.writer import WriteOptions, Writer
from configsvc.v1 import (
    config_pb2,
    config_pb2_grpc,
    tenant_pb2,
    tenant_pb2_grpc,
    validation_pb2,
    validation_pb2_grpc,
)
from tests.helpers import ADMIN_KEY, Stack, auth_channel, ckey, close_stack, open_stack, serve_argv

ROOT = Path(__file__).resolve().parents[3]


async def history(stack: Stack, key: config_pb2.ConfigKey) -> list[int]:
    reply = await stack.config.History(config_pb2.HistoryRequest(key=key))
    return [r.version for r in reply.records]


def put(
    key: config_pb2.ConfigKey, value: str, request_id: str = "", **fields: Any
) -> config_pb2.PutRequest:
    return config_pb2.PutRequest(key=key, value=value, request_id=request_id, **fields)


async def test_a_retry_with_the_same_id_writes_one_version(stack: Stack, tenant: str) -> None:
    key = ckey(tenant, "pool.size")
    first = await stack.config.Put(put(key, "10", "req-1", reason="grow"))
    again = await stack.config.Put(put(key, "10", "req-1", reason="grow"))
    assert (again.revision, again.entry.version) == (first.revision, first.entry.version)
    assert again.entry == first.entry
    assert await history(stack, key) == [1]
    # A later change does not alter what the retry answers.
    await stack.config.Put(put(key, "11"))
    late = await stack.config.Put(put(key, "10", "req-1", reason="grow"))
    assert (late.revision, late.entry.version, late.entry.value) == (first.revision, 1, "10")
    assert await history(stack, key) == [2, 1]


async def test_different_ids_write_two_versions(stack: Stack, tenant: str) -> None:
    key = ckey(tenant, "pool.size")
    first = await stack.config.Put(put(key, "10", "a-1"))
    second = await stack.config.Put(put(key, "10", "a-2"))
    assert second.revision > first.revision and second.entry.version == 2
    assert await history(stack, key) == [2, 1]


async def test_the_same_id_with_another_request_is_refused(stack: Stack, tenant: str) -> None:
    key = ckey(tenant, "pool.size")
    first = await stack.config.Put(put(key, "10", "dup-1"))
    for other in (
        put(key, "11", "dup-1"),
        put(key, "10", "dup-1", reason="other"),
        put(ckey(tenant, "elsewhere"), "10", "dup-1"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stack.config.Put(other)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "request_id 'dup-1' was already used for another write" in err.value.details()
        assert f"revision {first.revision}" in err.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.config.Delete(config_pb2.DeleteRequest(key=key, request_id="dup-1"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.config.Put(put(key, "10", "not an id!"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "request_id" in err.value.details()
    assert await history(stack, key) == [1]


async def test_a_retry_is_answered_even_when_a_schema_now_refuses_it(
    stack: Stack, tenant: str
) -> None:
    """The first attempt committed; then a schema made the value invalid. The retry is
    the same logical write: it gets the first result, not INVALID_ARGUMENT."""
    key = ckey(tenant, "n.count")
    first = await stack.config.Put(put(key, "10", "schema-1"))
    validation = validation_pb2_grpc.ValidationServiceStub(  # type: ignore[no-untyped-call]
        stack.channel
    )
    await validation.PutSchema(
        validation_pb2.PutSchemaRequest(
            tenant=tenant, name="strings", pattern="n.*", schema='{"type": "string"}', force=True
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:  # a new write is judged by the schema
        await stack.config.Put(put(key, "11", "schema-2"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    again = await stack.config.Put(put(key, "10", "schema-1"))
    assert (again.revision, again.entry) == (first.revision, first.entry)
    assert await history(stack, key) == [1]


async def test_delete_and_rollback_retries_answer_the_first_result(
    stack: Stack, tenant: str
) -> None:
    key = ckey(tenant, "mode")
    await stack.config.Put(put(key, '"a"'))
    await stack.config.Put(put(key, '"b"'))
    rollback = config_pb2.RollbackRequest(key=key, to_version=1, request_id="rb-1")
    first = await stack.config.Rollback(rollback)
    again = await stack.config.Rollback(rollback)
    assert again == first and first.entry.version == 3 and first.entry.value == '"a"'
    delete = config_pb2.DeleteRequest(key=key, request_id="del-1", expected_revision=first.revision)
    deleted = await stack.config.Delete(delete)
    # The key is gone and its revision moved: without the id both would be refused.
    deleted_again = await stack.config.Delete(delete)
    assert deleted_again == deleted and deleted.version == 4
    assert deleted.previous == first.entry
    assert await history(stack, key) == [4, 3, 2, 1]


async def test_a_put_whose_answer_was_lost_after_the_commit(
    stack: Stack, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commit happens, then the server stalls until the client's deadline passes: the
    client cannot know the outcome. Its retry (same id, same compare-and-swap) answers the
    first result instead of ABORTED or a second version."""
    key = ckey(tenant, "lost.answer")
    stall = asyncio.Event()
    real = Writer._catch_up

    async def stalled(self: Writer, revision: int) -> None:
        await asyncio.wait_for(stall.wait(), 10)

    monkeypatch.setattr(Writer, "_catch_up", stalled)
    request = put(key, "1", "lost-1", expected_revision=0)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stack.config.Put(request, timeout=1.0)
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        stall.set()
        monkeypatch.setattr(Writer, "_catch_up", real)
    committed = await stack.config.Get(
        config_pb2.GetRequest(key=key, consistency=config_pb2.READ_CONSISTENCY_STRONG)
    )
    retry = await stack.config.Put(request)
    assert (retry.revision, retry.entry.version) == (committed.entry.mod_revision, 1)
    assert await history(stack, key) == [1]
    # Without the id the same retry is what it always was: a conflict.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.config.Put(put(key, "1", expected_revision=0))
    assert err.value.code() == grpc.StatusCode.ABORTED


async def test_a_retry_on_another_replica_answers_the_first_result(
    stack: Stack, tenant: str
) -> None:
    other = await open_stack(stack.server.config.etcd_endpoints[0], stack.server.config.root_prefix)
    try:
        key = ckey(tenant, "replicated")
        first = await stack.config.Put(put(key, "1", "rep-1"))
        again = await other.config.Put(put(key, "1", "rep-1"))
        assert again.revision == first.revision and again.entry == first.entry
        assert await history(other, key) == [1]
    finally:
        await close_stack(other)


def serve(etcd: EtcdServer, port: int, root: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        serve_argv(etcd.endpoint, root, port),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "CONFIGSVC_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY},
    )


async def wait_answering(stub: config_pb2_grpc.ConfigServiceStub, tenant: str) -> None:
    for _ in range(300):
        try:
            await stub.List(config_pb2.ListRequest(tenant=tenant), timeout=2)
            return
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.1)
    raise AssertionError("the server never answered")


async def test_a_server_killed_during_a_put(etcd: EtcdServer) -> None:
    """A `configsvc serve` process is SIGKILLed while a Put is in flight (right when
    its commit shows in etcd); a retry with the same id on its successor answers the
    committed result, and the key has exactly one version."""
    root = f"/request-ids-{os.getpid()}"
    port = free_port()
    first = serve(etcd, port, root)
    address = f"127.0.0.1:{port}"
    try:
        async with auth_channel(address) as channel:
            stub = config_pb2_grpc.ConfigServiceStub(channel)  # type: ignore[no-untyped-call]
            tenants = tenant_pb2_grpc.TenantServiceStub(channel)  # type: ignore[no-untyped-call]
            for _ in range(300):
                try:
                    await tenants.CreateTenant(
                        tenant_pb2.CreateTenantRequest(name="acme"), timeout=2
                    )
                    break
                except grpc.aio.AioRpcError:
                    await asyncio.sleep(0.1)
            await wait_answering(stub, "acme")
            key = ckey("acme", "killed")
            request = put(key, "1", "kill-1")
            call = asyncio.ensure_future(stub.Put(request, timeout=10))
            reader = await open_stack(etcd.endpoint, root)
            try:
                for _ in range(500):
                    if reader.server.mirror.lookup("acme", "prod", "api", "killed"):
                        break
                    await asyncio.sleep(0.01)
                first.send_signal(signal.SIGKILL)
                first.wait(10)
                try:
                    lost = await call
                    seen: int | None = lost.revision
                except grpc.aio.AioRpcError:
                    seen = None
                second = serve(etcd, port, root)
                try:
                    await wait_answering(stub, "acme")
                    retry = await stub.Put(request, timeout=10)
                    assert retry.entry.version == 1
                    assert seen in (None, retry.revision)
                    item = reader.server.mirror.lookup("acme", "prod", "api", "killed")
                    assert item is not None and item.entry.mod_revision == retry.revision
                    assert await history(reader, key) == [1]
                finally:
                    second.send_signal(signal.SIGKILL)
                    second.wait(10)
            finally:
                await close_stack(reader)
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGKILL)
            first.wait(10)


async def test_ids_are_remembered_for_a_bounded_time_and_count(stack: Stack, tenant: str) -> None:
    """A writer with tiny bounds (the server's defaults: 10 minutes, 100,000 per tenant):
    the oldest ids beyond the count are trimmed, and an id is forgotten once its lease
    ends, within a generous deadline."""
    server = stack.server
    writer = Writer(
        server.etcd,
        server.keyspace,
        server.mirror,
        IdempotencySettings(retention=1.0, lease_reuse=1.0, max_per_tenant=3, trim_every=1),
    )
    etcd = server.etcd
    prefix = server.keyspace.record_prefix(tenant, "req")

    async def remembered() -> int:
        reply = await etcd.range(
            rpc.RangeRequest(key=prefix, range_end=prefix_range_end(prefix), count_only=True)
        )
        return int(reply.count)

    def options(request_id: str) -> WriteOptions:
        request = put(ckey(tenant, "bounded"), "1", request_id)
        return WriteOptions(
            expected_revision=None,
            reason="",
            actor="test",
            timeout=5.0,
            request=idempotency.request_id(request_id, "Put", "test", request, "Put of bounded"),
        )

    key = ConfigKey.parse(tenant, "prod", "api", "bounded")
    for i in range(5):
        await writer.put(key, "1", options(f"count-{i}"))
    assert await remembered() == 3
    assert await writer.replay(key, options("count-0")) is None  # the oldest, trimmed
    assert await writer.replay(key, options("count-4")) is not None
    for _ in range(300):  # the lease's TTL is 2 s
        if await remembered() == 0:
            break
        await asyncio.sleep(0.1)
    assert await remembered() == 0
    assert await writer.replay(key, options("count-4")) is None
