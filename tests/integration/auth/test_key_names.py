"""API key names are unique and never recycled, so a role binding on ``key:<name>`` can
only ever reach the one key that took the name (issue 17, item 10).

Escalation paths tried against a real etcd and real servers: a key created with the
bootstrap admin's name, a key re-created under a revoked key's name, and an upgraded
installation whose keys predate the name records.
"""

from __future__ import annotations

import asyncio
import os

import grpc
import pytest
from aetcd import rpc

from configsvc.auth.settings import AuthSettings
from configsvc.cli.main import main
from configsvc.store.etcd import EtcdClient, prefix_range_end
from configsvc.store.keyspace import Keyspace
from configsvc.v1 import auth_pb2, auth_pb2_grpc
from tests.helpers import ADMIN_KEY, Stack, auth_channel, close_stack, open_stack
from tests.integration.auth.support import admin, bind, channel_for, new_key, unique


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def code_of_create(stack: Stack, name: str) -> grpc.StatusCode:
    try:
        await admin(stack).CreateApiKey(auth_pb2.CreateApiKeyRequest(name=name))
    except grpc.aio.AioRpcError as err:
        assert name in (err.details() or "")
        return err.code()
    return grpc.StatusCode.OK


async def is_admin(stack: Stack, key: str) -> bool:
    async with channel_for(stack, key) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
        try:
            await stub.ListApiKeys(auth_pb2.ListApiKeysRequest())
        except grpc.aio.AioRpcError as err:
            assert err.code() in (
                grpc.StatusCode.PERMISSION_DENIED,
                grpc.StatusCode.UNAUTHENTICATED,
            )
            return False
    return True


async def test_a_key_named_like_the_bootstrap_admin_gets_no_admin_rights(stack: Stack) -> None:
    try:
        made = await admin(stack).CreateApiKey(auth_pb2.CreateApiKeyRequest(name="bootstrap-admin"))
    except grpc.aio.AioRpcError as err:
        assert err.code() == grpc.StatusCode.ALREADY_EXISTS
        assert "never reused" in (err.details() or "")
    else:  # the bug: the look-alike key inherits the bootstrap binding
        assert not await is_admin(stack, made.secret), "a look-alike key got admin rights"
    listed = await admin(stack).ListApiKeys(auth_pb2.ListApiKeysRequest())
    assert [k.id for k in listed.api_keys if k.name == "bootstrap-admin"] == ["00000000000000ad"]


async def test_a_new_key_under_a_revoked_name_does_not_inherit_its_binding(
    stack: Stack, tenant: str
) -> None:
    name = unique("ops")
    first = await new_key(stack, name)
    await bind(stack, f"key:{name}", auth_pb2.ROLE_ADMIN, "*")
    assert await is_admin(stack, first)
    assert await code_of_create(stack, name) == grpc.StatusCode.ALREADY_EXISTS  # live name
    listed = await admin(stack).ListApiKeys(auth_pb2.ListApiKeysRequest())
    [key_id] = [k.id for k in listed.api_keys if k.name == name]
    await admin(stack).RevokeApiKey(auth_pb2.RevokeApiKeyRequest(id=key_id))
    assert not await is_admin(stack, first)
    # The binding still names key:<name>; no later key can ever present that identity.
    assert await code_of_create(stack, name) == grpc.StatusCode.ALREADY_EXISTS
    listed = await admin(stack).ListApiKeys(auth_pb2.ListApiKeysRequest())
    assert not [k for k in listed.api_keys if k.name == name]


async def test_revoking_the_bootstrap_key_leaves_no_binding_waiting(stack: Stack) -> None:
    """A fresh installation (own root prefix): the bootstrap key makes a real admin,
    is revoked, and its name cannot be taken again."""
    root = f"/names-{os.getpid()}-{unique('r')}"
    other = await open_stack(stack.server.config.etcd_endpoints[0], root)
    try:
        ops_key = await new_key(other, "ops")
        await bind(other, "key:ops", auth_pb2.ROLE_ADMIN, "*")
        async with auth_channel(other.address, ops_key) as channel:
            ops = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
            await ops.RevokeApiKey(auth_pb2.RevokeApiKeyRequest(id="00000000000000ad"))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await ops.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="bootstrap-admin"))
            assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
            bindings = await ops.ListRoleBindings(
                auth_pb2.ListRoleBindingsRequest(subject="key:bootstrap-admin")
            )
            assert [b.role for b in bindings.bindings] == [auth_pb2.ROLE_ADMIN]
    finally:
        await close_stack(other)


async def test_an_upgraded_installation_reserves_the_names_it_used(stack: Stack) -> None:
    """Keys written before name records existed (simulated by deleting the records):
    the next server reserves the names of live keys, of revoked keys its audit trail
    remembers and of the bootstrap key; the live legacy key keeps its binding."""
    root = f"/upgrade-{os.getpid()}-{unique('r')}"
    endpoint = stack.server.config.etcd_endpoints[0]
    old = await open_stack(endpoint, root)
    try:
        legacy_key = await new_key(old, "legacy")
        await bind(old, "key:legacy", auth_pb2.ROLE_ADMIN, "*")
        await new_key(old, "gone")
        await bind(old, "key:gone", auth_pb2.ROLE_ADMIN, "*")
        listed = await admin(old).ListApiKeys(auth_pb2.ListApiKeysRequest())
        [gone_id] = [k.id for k in listed.api_keys if k.name == "gone"]
        await admin(old).RevokeApiKey(auth_pb2.RevokeApiKeyRequest(id=gone_id))
        await admin(old).RevokeApiKey(auth_pb2.RevokeApiKeyRequest(id="00000000000000ad"))
    except grpc.aio.AioRpcError:
        await close_stack(old)
        raise
    await close_stack(old)
    ks = Keyspace(root)
    etcd = EtcdClient([endpoint])
    try:
        # What an older version wrote: no name records, no marker of their migration.
        prefix = ks.sys_key("apikeynames", "")
        await etcd.txn(
            rpc.TxnRequest(
                success=[
                    rpc.RequestOp(
                        request_delete_range=rpc.DeleteRangeRequest(
                            key=prefix, range_end=prefix_range_end(prefix)
                        )
                    ),
                    rpc.RequestOp(
                        request_delete_range=rpc.DeleteRangeRequest(
                            key=ks.sys_key("auth", "key-names-reserved")
                        )
                    ),
                ]
            )
        )
    finally:
        await etcd.close()

    # The bootstrap key was revoked: this replica is called with the legacy admin key.
    upgraded = await open_stack(endpoint, root, auth=AuthSettings())
    try:
        async with auth_channel(upgraded.address, legacy_key) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)  # type: ignore[no-untyped-call]
            assert (await stub.WhoAmI(auth_pb2.WhoAmIRequest())).identity == "key:legacy"
            for name in ("legacy", "gone", "bootstrap-admin"):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(name=name))
                assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS, name
            made = await stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="fresh"))
            assert made.api_key.name == "fresh"
    finally:
        await close_stack(upgraded)


async def test_the_cli_says_why_a_name_cannot_be_reused(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONFIGSVC_API_KEY", ADMIN_KEY)
    server = ("--server", stack.address)
    name = unique("cli")
    code, out, err = await run(capsys, "auth", "key-create", name, *server)
    assert code == 0, err
    listed = await admin(stack).ListApiKeys(auth_pb2.ListApiKeysRequest())
    [key_id] = [k.id for k in listed.api_keys if k.name == name]
    code, out, err = await run(capsys, "auth", "key-revoke", key_id, *server)
    assert code == 0, err
    code, out, err = await run(capsys, "auth", "key-create", name, *server)
    assert code != 0 and not out
    assert f"the API key name '{name}' was already used by key {key_id}" in err
    assert "names are never reused" in err
    with pytest.raises(SystemExit):
        main(["auth", "key-create", "--help"])
    assert "never reused" in " ".join(capsys.readouterr().out.split())
