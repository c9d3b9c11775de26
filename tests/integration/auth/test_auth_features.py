"""Watch filtering, grant changes on open streams, revocation, expiry, rate limits,
stream caps, quotas, bootstrap and audit identity, against a real etcd."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2

from configsvc.auth.settings import AuthSettings
from configsvc.model.keys import ConfigKey
from configsvc.store.etcd import EtcdClient
from configsvc.v1 import (
    audit_pb2,
    auth_pb2,
    auth_pb2_grpc,
    config_pb2,
    config_pb2_grpc,
    watch_pb2,
    watch_pb2_grpc,
)
from tests.helpers import (
    ADMIN_KEY,
    Stack,
    auth_channel,
    ckey,
    close_stack,
    error_details,
    open_stack,
)
from tests.integration.auth.support import admin, bind, channel_for, new_key, principal, unique


def config(channel: grpc.aio.Channel) -> config_pb2_grpc.ConfigServiceStub:
    return config_pb2_grpc.ConfigServiceStub(channel)  # type: ignore[no-untyped-call]


def watch_call(channel: grpc.aio.Channel, *selectors: watch_pb2.WatchSelector) -> Any:
    stub = watch_pb2_grpc.WatchServiceStub(channel)  # type: ignore[no-untyped-call]
    return stub.Watch(watch_pb2.WatchRequest(selectors=list(selectors), send_snapshot=True))


async def put(stack: Stack, tenant: str, key: str, env: str = "prod") -> int:
    response = await stack.config.Put(
        config_pb2.PutRequest(key=ckey(tenant, key, env=env), value="1")
    )
    return int(response.revision)


async def next_message(call: Any) -> watch_pb2.WatchResponse:
    message = await asyncio.wait_for(call.read(), 15)
    assert message is not grpc.aio.EOF
    return message  # type: ignore[no-any-return]


async def snapshot_keys(call: Any) -> list[str]:
    keys: list[str] = []
    while True:
        message = await next_message(call)
        if message.WhichOneof("kind") == "snapshot_end":
            return keys
        keys += [e.key.key for e in message.snapshot.entries]


async def test_watch_carries_only_entries_the_caller_may_read(stack: Stack, tenant: str) -> None:
    await put(stack, tenant, "pub.a")
    await put(stack, tenant, "secret.a")
    await put(stack, tenant, "pub.b", env="staging")
    _, key = await principal(stack, auth_pb2.ROLE_VIEWER, tenant, "prod", key_prefix="pub.")
    async with channel_for(stack, key) as channel:
        call = watch_call(channel, watch_pb2.WatchSelector(tenant=tenant))  # whole tenant
        assert await snapshot_keys(call) == ["pub.a"]
        hidden = await put(stack, tenant, "secret.b")
        shown = await put(stack, tenant, "pub.c")
        message = await next_message(call)
        while message.WhichOneof("kind") == "progress":
            message = await next_message(call)
        assert message.changes.revision == shown > hidden
        assert [c.key.key for c in message.changes.changes] == ["pub.c"]
        call.cancel()
        # Reading a key outside the grant directly is denied, as is a selector with no overlap.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await config(channel).Get(config_pb2.GetRequest(key=ckey(tenant, "secret.a")))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        denied = watch_call(channel, watch_pb2.WatchSelector(tenant=tenant, environment="staging"))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await denied.read()
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_role_change_resets_the_open_stream(stack: Stack, tenant: str) -> None:
    name, key = await principal(stack, auth_pb2.ROLE_VIEWER, tenant, "prod")
    extra = await bind(stack, f"key:{name}", auth_pb2.ROLE_VIEWER, tenant, "staging")
    async with channel_for(stack, key) as channel:
        call = watch_call(channel, watch_pb2.WatchSelector(tenant=tenant, environment="prod"))
        await snapshot_keys(call)
        # Someone else's binding changes nothing for this stream.
        await bind(stack, "key:somebody-else", auth_pb2.ROLE_VIEWER, tenant)
        revision = await put(stack, tenant, "still.flowing")
        message = await next_message(call)
        while message.WhichOneof("kind") == "progress":
            message = await next_message(call)
        assert message.changes.revision == revision
        # Losing a grant resets the stream: the client re-opens under the new grants.
        await admin(stack).DeleteRoleBinding(auth_pb2.DeleteRoleBindingRequest(id=extra))
        message = await next_message(call)
        while message.WhichOneof("kind") != "reset":
            message = await next_message(call)
        assert message.reset.reason == watch_pb2.RESET_REASON_PERMISSIONS_CHANGED
        assert await asyncio.wait_for(call.read(), 15) is grpc.aio.EOF


async def test_revoked_key_ends_streams_and_calls(stack: Stack, tenant: str) -> None:
    name, key = await principal(stack, auth_pb2.ROLE_VIEWER, tenant)
    listed = await admin(stack).ListApiKeys(auth_pb2.ListApiKeysRequest())
    key_id = next(k.id for k in listed.api_keys if k.name == name)
    async with channel_for(stack, key) as channel:
        call = watch_call(channel, watch_pb2.WatchSelector(tenant=tenant))
        await snapshot_keys(call)
        await admin(stack).RevokeApiKey(auth_pb2.RevokeApiKeyRequest(id=key_id))
        message = await next_message(call)
        while message.WhichOneof("kind") != "reset":
            message = await next_message(call)
        assert message.reset.reason == watch_pb2.RESET_REASON_PERMISSIONS_CHANGED
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await config(channel).List(config_pb2.ListRequest(tenant=tenant))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await admin(stack).RevokeApiKey(auth_pb2.RevokeApiKeyRequest(id=key_id))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_expired_key_is_refused(stack: Stack, tenant: str) -> None:
    name = unique("short")
    created = await admin(stack).CreateApiKey(
        auth_pb2.CreateApiKeyRequest(name=name, ttl=duration_pb2.Duration(seconds=1))
    )
    assert created.api_key.HasField("expire_time")
    await bind(stack, f"key:{name}", auth_pb2.ROLE_VIEWER, tenant)
    async with channel_for(stack, created.secret) as channel:
        who = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
        code = grpc.StatusCode.OK
        for _ in range(100):  # bounded: the key expires one second after creation
            try:
                await who.WhoAmI(auth_pb2.WhoAmIRequest())
            except grpc.aio.AioRpcError as err:
                code = err.code()
                assert "expired" in (err.details() or "")
                break
            await asyncio.sleep(0.1)
        assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_credentials_that_are_not_accepted(stack: Stack) -> None:
    who = auth_pb2.WhoAmIRequest()
    stub = admin(stack)
    for header in (
        "Basic dXNlcjpwYXNz",
        "Bearer cs_0123456789abcdef_wrong",
        "Bearer cs_nothex_x",
        "Bearer eyJhbGciOiJub25lIn0.e30.",
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.WhoAmI(who, metadata=(("authorization", header),))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, header
    reply = await stub.WhoAmI(who)
    assert reply.identity == "key:bootstrap-admin" and reply.method == "api-key"
    assert [b.role for b in reply.bindings] == [auth_pb2.ROLE_ADMIN]


@pytest.fixture
async def limited(stack: Stack) -> AsyncIterator[Stack]:
    """A second server on the session etcd with tight per-identity limits."""
    other = await open_stack(
        stack.server.config.etcd_endpoints[0],
        stack.server.config.root_prefix,
        auth=AuthSettings(
            bootstrap_admin_key=ADMIN_KEY,
            rate_per_identity=0.01,
            burst_per_identity=3,
            max_streams_per_identity=2,
        ),
    )
    yield other
    await close_stack(other)


async def limited_principal(stack: Stack, limited: Stack, tenant: str) -> str:
    """Made through the unlimited server (the admin has a bucket too), seen by both."""
    _, key = await principal(stack, auth_pb2.ROLE_VIEWER, tenant)
    await limited.server.mirror.sync(5)
    return key


async def test_rate_limit_per_identity(stack: Stack, limited: Stack, tenant: str) -> None:
    key = await limited_principal(stack, limited, tenant)
    async with channel_for(limited, key) as channel:
        stub = config(channel)
        request = config_pb2.ListRequest(tenant=tenant)
        for _ in range(3):
            await stub.List(request)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.List(request)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    found = error_details(err.value)
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    assert found[0].Unpack(info) and info.reason == "RATE_LIMITED"
    assert found[1].Unpack(retry) and retry.retry_delay.ToNanoseconds() > 0
    # Another identity has its own bucket.
    other = await limited_principal(stack, limited, tenant)
    async with channel_for(limited, other) as channel:
        await config(channel).List(config_pb2.ListRequest(tenant=tenant))


async def test_stream_cap_per_identity(stack: Stack, limited: Stack, tenant: str) -> None:
    key = await limited_principal(stack, limited, tenant)
    selector = watch_pb2.WatchSelector(tenant=tenant)
    async with channel_for(limited, key) as channel:
        first, second = watch_call(channel, selector), watch_call(channel, selector)
        await snapshot_keys(first)
        await snapshot_keys(second)
        third = watch_call(channel, selector)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await third.read()
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "STREAM_LIMIT" in str(error_details(err.value)[0])
        first.cancel()
        second.cancel()
    caps = limited.server.auth.streams
    for _ in range(200):  # bounded: the handlers finish shortly after the cancel
        if not caps.open_streams():
            break
        await asyncio.sleep(0.05)
    assert not caps.open_streams()


async def test_tenant_quotas(stack: Stack, tenant: str) -> None:
    stub = admin(stack)
    set_reply = await stub.SetTenantQuota(
        auth_pb2.SetTenantQuotaRequest(
            quota=auth_pb2.TenantQuota(tenant=tenant, max_keys=2, max_value_bytes=10)
        )
    )
    assert set_reply.quota.max_keys == 2
    await put(stack, tenant, "one")
    await put(stack, tenant, "two")
    await put(stack, tenant, "two")  # an update is not a new key
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await put(stack, tenant, "three")
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "max_keys" in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, "one"), value='"0123456789"'))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    got = await stub.GetTenantQuota(auth_pb2.GetTenantQuotaRequest(tenant=tenant))
    assert (got.keys, got.quota.max_value_bytes) == (2, 10)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.SetTenantQuota(
            auth_pb2.SetTenantQuotaRequest(
                quota=auth_pb2.TenantQuota(tenant=tenant, max_keys=-1, max_value_bytes=10**9)
            )
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_admin_requests_are_validated(stack: Stack, tenant: str) -> None:
    stub = admin(stack)
    bad = [
        stub.CreateRoleBinding(
            auth_pb2.CreateRoleBindingRequest(
                binding=auth_pb2.RoleBinding(
                    subject="key:x", role=auth_pb2.ROLE_VIEWER, tenant="a/../b"
                )
            )
        ),
        stub.CreateRoleBinding(
            auth_pb2.CreateRoleBindingRequest(
                binding=auth_pb2.RoleBinding(
                    subject="nobody",
                    role=auth_pb2.ROLE_UNSPECIFIED,
                    tenant=tenant,
                    environment="pr*d",
                    key_prefix="a/b",
                )
            )
        ),
        stub.CreateRoleBinding(auth_pb2.CreateRoleBindingRequest()),
        stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="Bad Name")),
        stub.CreateApiKey(
            auth_pb2.CreateApiKeyRequest(name="ok", ttl=duration_pb2.Duration(nanos=5))
        ),
        stub.SetTenantQuota(auth_pb2.SetTenantQuotaRequest()),
    ]
    for call in bad:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for missing in (
        stub.DeleteRoleBinding(auth_pb2.DeleteRoleBindingRequest(id="nope")),
        stub.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(id="zz")),
        stub.GetTenantQuota(auth_pb2.GetTenantQuotaRequest(tenant="no-such")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await missing
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_audit_records_carry_the_authenticated_identity(stack: Stack, tenant: str) -> None:
    name, key = await principal(stack, auth_pb2.ROLE_EDITOR, tenant)
    async with channel_for(stack, key) as channel:
        put_reply = await config(channel).Put(
            config_pb2.PutRequest(key=ckey(tenant, "audited"), value="1"),
            metadata=(("x-configsvc-actor", "someone-else"),),
        )
    assert put_reply.entry.updated_by == f"key:{name}"
    ks = stack.server.keyspace
    etcd = EtcdClient(stack.server.config.etcd_endpoints)
    try:
        records = [
            audit_pb2.AuditRecord.FromString(kv.value)
            for kv in await etcd.range_all(ks.audit_prefix(tenant))
        ]
        system = [
            audit_pb2.AuditRecord.FromString(kv.value)
            for kv in await etcd.range_all(ks.sys_audit_prefix)
        ]
    finally:
        await etcd.close()
    assert [r.actor for r in records if r.key.key == "audited"] == [f"key:{name}"]
    made = [r for r in system if r.kind == "api-key" and r.attributes["identity"] == f"key:{name}"]
    assert [r.actor for r in made] == ["key:bootstrap-admin"]
    assert any(
        r.kind == "role-binding" and r.attributes["subject"] == f"key:{name}" for r in system
    )


async def test_bootstrap_happens_once_per_installation(stack: Stack) -> None:
    other_key = "cs_00000000000000bb_another-bootstrap-key"
    other = await open_stack(
        stack.server.config.etcd_endpoints[0],
        stack.server.config.root_prefix,
        auth=AuthSettings(bootstrap_admin_key=other_key),
    )
    try:
        async with auth_channel(other.address, other_key) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await auth_pb2_grpc.AuthServiceStub(channel).WhoAmI(  # type: ignore[no-untyped-call]
                    auth_pb2.WhoAmIRequest()
                )
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert (
            await admin(other).WhoAmI(auth_pb2.WhoAmIRequest())
        ).identity == "key:bootstrap-admin"
    finally:
        await close_stack(other)


async def test_auth_off_serves_everyone(stack: Stack, tenant: str) -> None:
    other = await open_stack(
        stack.server.config.etcd_endpoints[0],
        stack.server.config.root_prefix,
        auth=AuthSettings(mode="off"),
    )
    try:
        async with grpc.aio.insecure_channel(other.address) as channel:
            reply = await auth_pb2_grpc.AuthServiceStub(channel).WhoAmI(  # type: ignore[no-untyped-call]
                auth_pb2.WhoAmIRequest()
            )
            assert reply.method == "none"
            await config(channel).List(config_pb2.ListRequest(tenant=tenant))
    finally:
        await close_stack(other)


async def test_new_keys_work_and_can_be_listed(stack: Stack, tenant: str) -> None:
    name = unique("svc")
    key = await new_key(stack, name)
    assert key.startswith("cs_")
    listed = await admin(stack).ListApiKeys(auth_pb2.ListApiKeysRequest())
    mine = [k for k in listed.api_keys if k.name == name]
    assert len(mine) == 1 and mine[0].create_revision > 0 and key.startswith(f"cs_{mine[0].id}_")
    async with channel_for(stack, key) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:  # authenticated but no binding
            await config(channel).List(config_pb2.ListRequest(tenant=tenant))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert f"key:{name} lacks config.read" in (err.value.details() or "")
    bindings = await admin(stack).ListRoleBindings(
        auth_pb2.ListRoleBindingsRequest(subject="key:bootstrap-admin")
    )
    assert [b.id for b in bindings.bindings] == ["bootstrap"]


async def test_a_method_without_a_rule_is_denied_to_everyone(stack: Stack, tenant: str) -> None:
    other = await open_stack(stack.server.config.etcd_endpoints[0], stack.server.config.root_prefix)
    try:
        guard = other.server.auth.admission
        guard.rules = {
            m: r
            for m, r in guard.rules.items()  # as if someone forgot a row
            if not m.endswith(("/List", "/Watch"))
        }
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await other.config.List(config_pb2.ListRequest(tenant=tenant))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "no authorization rule" in (err.value.details() or "")
        call = watch_call(other.channel, watch_pb2.WatchSelector(tenant=tenant))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await close_stack(other)


async def test_secret_read_policy_follows_role_bindings(stack: Stack, tenant: str) -> None:
    policy = stack.server.auth.secret_policy
    reader, _ = await principal(stack, auth_pb2.ROLE_SECRET_READER, tenant)
    narrow, _ = await principal(stack, auth_pb2.ROLE_SECRET_READER, tenant, "prod")
    viewer, _ = await principal(stack, auth_pb2.ROLE_VIEWER, tenant)
    key = ConfigKey(tenant, "prod", "api", "db.password")
    assert policy.allows(f"key:{reader}", tenant) and policy.allows_key(f"key:{reader}", key)
    assert not policy.allows(f"key:{reader}", "another-tenant")
    assert not policy.allows(f"key:{narrow}", tenant) and policy.allows_key(f"key:{narrow}", key)
    assert not policy.allows_key(f"key:{narrow}", ConfigKey(tenant, "staging", "api", "p"))
    assert not policy.allows(f"key:{viewer}", tenant)
    assert policy.allows("key:bootstrap-admin", tenant)
