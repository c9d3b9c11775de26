"""Authorization of the services merged after auth, with the bindings they need:
tenant-wide roles for tenant objects, both environments for Promote and Diff,
the whole (tenant, environment, service) for resolved-view watches, role
bindings (not --secret-readers) for secret plaintext, and the authenticated
identity in the audit records of the hierarchy services."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import hvac
import pytest

from configsvc.devstack.openbao import OpenBaoDevServer
from configsvc.v1 import (
    audit_query_pb2,
    audit_query_pb2_grpc,
    auth_pb2,
    config_pb2,
    config_pb2_grpc,
    environment_pb2,
    hierarchy_pb2,
    template_pb2,
    tenant_pb2,
    validation_pb2,
    watch_pb2,
    watch_pb2_grpc,
)
from tests.helpers import Stack, ckey, close_stack, open_stack, secret_settings
from tests.integration.auth.support import admin, bind, channel_for, code_of, principal
from tests.integration.hier.support import Hier, hier_stubs

DENIED = grpc.StatusCode.PERMISSION_DENIED


async def as_role(
    stack: Stack,
    role: int,
    tenant: str,
    environment: str = "",
    service: str = "",
    key_prefix: str = "",
) -> tuple[str, grpc.aio.Channel]:
    name, key = await principal(stack, role, tenant, environment, service, key_prefix)
    return name, channel_for(stack, key)


async def test_tenant_objects_need_tenant_wide_roles(stack: Stack, tenant: str) -> None:
    _, editor = await as_role(stack, auth_pb2.ROLE_EDITOR, tenant)
    _, prod_admin = await as_role(stack, auth_pb2.ROLE_ADMIN, tenant, "prod")
    _, tenant_admin = await as_role(stack, auth_pb2.ROLE_ADMIN, tenant)
    _, viewer = await as_role(stack, auth_pb2.ROLE_VIEWER, tenant)
    try:
        as_editor, as_viewer = Hier_of(stack, editor), Hier_of(stack, viewer)
        template = template_pb2.PutTemplateRequest(tenant=tenant, name="base", values={"a": "1"})
        assert await code_of(as_viewer.templates.PutTemplate(template)) == DENIED
        assert await code_of(as_editor.templates.PutTemplate(template)) == grpc.StatusCode.OK
        listed = await as_viewer.templates.ListTemplates(
            template_pb2.ListTemplatesRequest(tenant=tenant)
        )
        assert [t.name for t in listed.templates] == ["base"]
        # Schemas are the policy editors obey: tenant admins only, even when the schema
        # applies to one environment the caller administers.
        schema = validation_pb2.PutSchemaRequest(
            tenant=tenant, name="n", pattern="n.*", schema='{"type": "integer"}', environment="prod"
        )
        assert await code_of(as_editor.validation.PutSchema(schema)) == DENIED
        assert await code_of(Hier_of(stack, prod_admin).validation.PutSchema(schema)) == DENIED
        assert (
            await code_of(Hier_of(stack, tenant_admin).validation.PutSchema(schema))
            == grpc.StatusCode.OK
        )
        # Environments: admin of that environment declares and (un)protects it.
        declare = environment_pb2.CreateEnvironmentRequest(
            tenant=tenant, name="prod", protected=True
        )
        assert await code_of(as_editor.environments.CreateEnvironment(declare)) == DENIED
        assert (
            await code_of(Hier_of(stack, prod_admin).environments.CreateEnvironment(declare))
            == grpc.StatusCode.OK
        )
        got = await as_viewer.environments.GetEnvironment(
            environment_pb2.GetEnvironmentRequest(tenant=tenant, name="prod")
        )
        assert got.environment.protected
    finally:
        for channel in (editor, prod_admin, tenant_admin, viewer):
            await channel.close()


def Hier_of(stack: Stack, channel: grpc.aio.Channel) -> Hier:
    return hier_stubs(Stack(stack.server, channel, stack.config, stack.tenants))


async def test_promote_needs_write_on_target_and_read_on_source(stack: Stack, tenant: str) -> None:
    await stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, "k", env="staging"), value="7"))
    name, editor = await as_role(stack, auth_pb2.ROLE_EDITOR, tenant, "prod")
    promote = hierarchy_pb2.PromoteRequest(
        tenant=tenant,
        service="api",
        keys=["k"],
        source_environment="staging",
        target_environment="prod",
    )
    try:
        stubs = Hier_of(stack, editor)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stubs.hierarchy.Promote(promote)
        assert err.value.code() == DENIED
        assert "environment=staging" in (err.value.details() or "")
        # Reading prod and staging is not enough either: Promote writes prod.
        _, viewer = await as_role(stack, auth_pb2.ROLE_VIEWER, tenant)
        async with viewer:
            assert await code_of(Hier_of(stack, viewer).hierarchy.Promote(promote)) == DENIED
            diff = hierarchy_pb2.DiffRequest(
                tenant=tenant,
                left=hierarchy_pb2.DiffSide(environment="staging", service="api"),
                right=hierarchy_pb2.DiffSide(environment="prod", service="api"),
            )
            rows = await Hier_of(stack, viewer).hierarchy.Diff(diff)
            assert [r.path for r in rows.rows] == ["/k"]
            assert await code_of(stubs.hierarchy.Diff(diff)) == DENIED  # no read on staging
        await bind(stack, f"key:{name}", auth_pb2.ROLE_VIEWER, tenant, "staging")
        promoted = await stubs.hierarchy.Promote(promote)
        assert list(promoted.keys) == ["k"]
        got = await stack.config.Get(config_pb2.GetRequest(key=ckey(tenant, "k")))
        assert got.entry.value == "7" and got.entry.updated_by == f"key:{name}"
    finally:
        await editor.close()


async def next_message(call: Any) -> watch_pb2.WatchResponse:
    message = await asyncio.wait_for(call.read(), 15)
    assert message is not grpc.aio.EOF
    return message  # type: ignore[no-any-return]


def resolved_watch(channel: grpc.aio.Channel, tenant: str) -> Any:
    stub = watch_pb2_grpc.WatchServiceStub(channel)  # type: ignore[no-untyped-call]
    return stub.Watch(
        watch_pb2.WatchRequest(
            selectors=[
                watch_pb2.WatchSelector(
                    tenant=tenant, environment="prod", service="api", resolved=True
                )
            ]
        )
    )


async def test_resolved_view_needs_read_on_the_whole_service(stack: Stack, tenant: str) -> None:
    await stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, "db.pool"), value="4"))
    await stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, "token", env="all"), value='"t"'))
    _, narrow = await as_role(stack, auth_pb2.ROLE_VIEWER, tenant, "prod", "api", "db.")
    _, other = await as_role(stack, auth_pb2.ROLE_VIEWER, tenant, "prod", "web")
    name, viewer = await as_role(stack, auth_pb2.ROLE_VIEWER, tenant, "prod", "api")
    try:
        for channel in (narrow, other):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await next_message(resolved_watch(channel, tenant))
            assert err.value.code() == DENIED
        call = resolved_watch(viewer, tenant)
        first = await next_message(call)
        assert json.loads(first.resolved.document) == {"db.pool": 4, "token": "t"}
        # Losing the binding resets the view, like entry watches; re-opening is refused.
        listed = await admin(stack).ListRoleBindings(
            auth_pb2.ListRoleBindingsRequest(subject=f"key:{name}")
        )
        await admin(stack).DeleteRoleBinding(
            auth_pb2.DeleteRoleBindingRequest(id=listed.bindings[0].id)
        )
        reset = await next_message(call)
        assert reset.reset.reason == watch_pb2.RESET_REASON_PERMISSIONS_CHANGED
        assert await asyncio.wait_for(call.read(), 15) is grpc.aio.EOF
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await next_message(resolved_watch(viewer, tenant))
        assert err.value.code() == DENIED
    finally:
        for channel in (narrow, other, viewer):
            await channel.close()


async def test_hierarchy_audit_records_name_the_authenticated_identity(
    stack: Stack, tenant: str
) -> None:
    name, tenant_admin = await as_role(stack, auth_pb2.ROLE_ADMIN, tenant)
    auditor_name, auditor = await as_role(stack, auth_pb2.ROLE_AUDITOR, tenant)
    _, viewer = await as_role(stack, auth_pb2.ROLE_VIEWER, tenant)
    spoof = (("x-configsvc-actor", "someone-else"),)
    try:
        stubs = Hier_of(stack, tenant_admin)
        await stubs.validation.PutSchema(
            validation_pb2.PutSchemaRequest(
                tenant=tenant, name="n", pattern="n.*", schema='{"type": "integer"}'
            ),
            metadata=spoof,
        )
        await stubs.environments.CreateEnvironment(
            environment_pb2.CreateEnvironmentRequest(tenant=tenant, name="qa"), metadata=spoof
        )
        await stubs.templates.PutTemplate(
            template_pb2.PutTemplateRequest(tenant=tenant, name="base", values={"a": "1"}),
            metadata=spoof,
        )
        query = audit_query_pb2.ListAuditRequest(filter=audit_query_pb2.AuditFilter(tenant=tenant))
        stub = audit_query_pb2_grpc.AuditServiceStub(viewer)  # type: ignore[no-untyped-call]
        assert await code_of(stub.ListAudit(query)) == DENIED
        stub = audit_query_pb2_grpc.AuditServiceStub(auditor)  # type: ignore[no-untyped-call]
        listed = await stub.ListAudit(query)
        by_kind = {
            e.record.kind: e.record.actor
            for e in listed.entries
            if e.record.kind not in ("", "config")
        }
        assert {by_kind[k] for k in ("schema", "environment", "template")} == {f"key:{name}"}
        assert auditor_name not in by_kind.values()
    finally:
        for channel in (tenant_admin, auditor, viewer):
            await channel.close()


@pytest.fixture
async def rbac_secret_stack(stack: Stack, openbao: OpenBaoDevServer) -> AsyncIterator[Stack]:
    """Auth on and Vault on, with a --secret-readers list that would let everyone read."""
    opened = await open_stack(
        stack.server.config.etcd_endpoints[0],
        stack.server.config.root_prefix,
        secrets=secret_settings(openbao, readers=("*",)),
    )
    yield opened
    await close_stack(opened)


async def test_secret_plaintext_follows_role_bindings_not_the_reader_list(
    rbac_secret_stack: Stack, openbao: OpenBaoDevServer, tmp_path: Path
) -> None:
    stack = rbac_secret_stack
    tenant = f"rbac-{tmp_path.name[-12:].replace('_', '-').lower()}"
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name=tenant))
    client = hvac.Client(url=openbao.address, token=openbao.token)
    try:
        client.secrets.kv.v2.create_or_update_secret(
            path=f"rbac/{tenant}", secret={"password": "pw"}
        )
    finally:
        client.adapter.close()
    stored = json.dumps(
        {
            "password": {
                "$secret": {"mount": "secret", "path": f"rbac/{tenant}", "field": "password"}
            }
        }
    )
    await stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, "db"), value=stored))
    reader, reading = await as_role(stack, auth_pb2.ROLE_VIEWER, tenant)
    await bind(stack, f"key:{reader}", auth_pb2.ROLE_SECRET_READER, tenant)
    viewer, viewing = await as_role(stack, auth_pb2.ROLE_VIEWER, tenant)
    request = config_pb2.GetRequest(key=ckey(tenant, "db"), resolve_secrets=True)
    try:
        got = await config_pb2_grpc.ConfigServiceStub(reading).Get(  # type: ignore[no-untyped-call]
            request
        )
        assert json.loads(got.entry.value) == {"password": "pw"}
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await config_pb2_grpc.ConfigServiceStub(viewing).Get(  # type: ignore[no-untyped-call]
                request
            )
        assert err.value.code() == DENIED and f"key:{viewer}" in (err.value.details() or "")
        # Without resolution the viewer reads the reference, as before.
        plain = await config_pb2_grpc.ConfigServiceStub(viewing).Get(  # type: ignore[no-untyped-call]
            config_pb2.GetRequest(key=ckey(tenant, "db"))
        )
        assert plain.entry.value == stored
    finally:
        await reading.close()
        await viewing.close()
