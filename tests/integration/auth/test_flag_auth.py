"""The flagd RPCs under authentication: an API key as call credentials (what a flagd
provider sends through ``channel_credentials``), any read grant in the flag set's
environment, and flag streams that end when the caller's grants change."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from configsvc.flags._gen.flagd.evaluation.v1 import evaluation_pb2 as ev
from configsvc.flags._gen.flagd.evaluation.v1 import evaluation_pb2_grpc
from configsvc.flags._gen.flagd.sync.v1 import sync_pb2, sync_pb2_grpc
from configsvc.v1 import auth_pb2
from tests.helpers import Stack, key_credentials
from tests.integration.auth.flag_requests import DOCUMENT
from tests.integration.auth.support import admin, bind, channel_for, code_of, principal


def selector(tenant: str, env: str = "prod") -> tuple[tuple[str, str], ...]:
    return (("flagd-selector", f"{tenant}/{env}"),)


async def load(stack: Stack, tenant: str, env: str = "prod") -> None:
    await stack.server.flags.store.put(
        tenant,
        env,
        DOCUMENT,
        bucketing=None,
        actor="tests",
        reason="",
        expected_revision=None,
        timeout=10,
    )


async def test_any_reader_in_the_environment_evaluates_its_flags(stack: Stack, tenant: str) -> None:
    await load(stack, tenant)
    await load(stack, tenant, "staging")
    _, service_key = await principal(stack, auth_pb2.ROLE_VIEWER, tenant, "prod", "api", "db.")
    request = ev.ResolveBooleanRequest(flag_key="on")
    async with grpc.aio.insecure_channel(stack.address) as anonymous:
        stub = evaluation_pb2_grpc.ServiceStub(anonymous)
        assert (
            await code_of(stub.ResolveBoolean(request, metadata=selector(tenant)))
            == grpc.StatusCode.UNAUTHENTICATED
        )
    # The provider's way: the key as call credentials over a (here: local) secure channel.
    async with grpc.aio.secure_channel(stack.address, key_credentials(service_key)) as channel:
        stub = evaluation_pb2_grpc.ServiceStub(channel)
        resolved = await stub.ResolveBoolean(request, metadata=selector(tenant))
        assert resolved.value is True
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.ResolveBoolean(request, metadata=selector(tenant, "staging"))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "environment=staging" in (err.value.details() or "")
        # The deprecated selector field of sync requests is authorized the same way.
        sync = sync_pb2_grpc.FlagSyncServiceStub(channel)
        assert (
            await code_of(
                sync.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(selector=f"{tenant}/staging"))
            )
            == grpc.StatusCode.PERMISSION_DENIED
        )
        # Without any selector the servicer answers (providers probe GetMetadata so).
        empty = await sync.GetMetadata(sync_pb2.GetMetadataRequest())
        assert not empty.metadata.fields
        assert await code_of(stub.ResolveBoolean(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_flag_streams_end_when_grants_change(stack: Stack, tenant: str) -> None:
    await load(stack, tenant)
    name, key = await principal(stack, auth_pb2.ROLE_VIEWER, tenant, "prod")
    extra = await bind(stack, f"key:{name}", auth_pb2.ROLE_VIEWER, tenant, "staging")
    async with channel_for(stack, key) as channel:
        events = evaluation_pb2_grpc.ServiceStub(channel).EventStream(
            ev.EventStreamRequest(), metadata=selector(tenant)
        )
        flags = sync_pb2_grpc.FlagSyncServiceStub(channel).SyncFlags(
            sync_pb2.SyncFlagsRequest(), metadata=selector(tenant)
        )
        assert (await asyncio.wait_for(events.read(), 15)).type == "provider_ready"
        assert (await asyncio.wait_for(flags.read(), 15)).flag_configuration
        await admin(stack).DeleteRoleBinding(auth_pb2.DeleteRoleBindingRequest(id=extra))
        for call in (events, flags):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                while True:  # a keep-alive may come first
                    await asyncio.wait_for(call.read(), 15)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "role bindings changed" in (err.value.details() or "")
        # Re-opened, the stream is admitted under the remaining grant (prod).
        again = evaluation_pb2_grpc.ServiceStub(channel).EventStream(
            ev.EventStreamRequest(), metadata=selector(tenant)
        )
        assert (await asyncio.wait_for(again.read(), 15)).type == "provider_ready"
        again.cancel()
