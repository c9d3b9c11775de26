"""The client against a server with authentication and TLS on: api_key and tls_credentials."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from configsvc.auth.settings import AuthSettings, ServerTLS
from configsvc.devstack.etcd import EtcdServer
from configsvc.store.writes import WriteOptions
from configsvc.v1 import auth_pb2, auth_pb2_grpc, config_pb2, tenant_pb2
from configsvc_client import (
    ConfigClient,
    PermissionDeniedError,
    Selector,
    UnauthenticatedError,
    tls_credentials,
)
from tests.helpers import ADMIN_KEY, Stack, ckey, close_stack, open_stack
from tests.integration.auth.certs import CA


@pytest.fixture
async def secured(etcd: EtcdServer, tmp_path: Path) -> AsyncIterator[tuple[Stack, Path]]:
    ca = CA()
    cert, key = ca.issue("localhost", server=True).write(tmp_path, "server")
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    stack = await open_stack(
        etcd.endpoint,
        f"/client-auth-{os.getpid()}",
        tls=ServerTLS(cert, key),
        auth=AuthSettings(bootstrap_admin_key=ADMIN_KEY),
    )
    yield stack, tmp_path / "ca.pem"
    await close_stack(stack)


async def test_api_key_over_tls(secured: tuple[Stack, Path]) -> None:
    stack, ca = secured
    credentials = tls_credentials(ca_file=ca)
    address = f"localhost:{stack.server.port}"
    await stack.server.writer.create_tenant("acme", "", WriteOptions(actor="test", timeout=5))
    async with ConfigClient.connect(
        address,
        selectors=[Selector(tenant="acme")],
        api_key=ADMIN_KEY,
        credentials=credentials,
        connect_timeout=10,
    ) as admin:
        entry = await admin.put("acme/prod/api/k", 1)
        assert entry.updated_by == "key:bootstrap-admin"
        assert await admin.wait_revision(entry.revision, timeout=10)
        assert admin.get_int("acme/prod/api/k", 0) == 1

    with pytest.raises(UnauthenticatedError):
        async with ConfigClient.connect(
            address,
            selectors=[Selector(tenant="acme")],
            credentials=credentials,
            connect_timeout=10,
        ):
            pass
    with pytest.raises(UnauthenticatedError):
        async with ConfigClient.connect(
            address,
            selectors=[Selector(tenant="acme")],
            api_key="cs_0000000000000000_wrong",
            credentials=credentials,
            connect_timeout=10,
        ):
            pass


async def test_permission_denied_fails_the_start(etcd: EtcdServer) -> None:
    stack = await open_stack(etcd.endpoint, f"/client-auth2-{os.getpid()}")
    try:
        await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
        stub = auth_pb2_grpc.AuthServiceStub(stack.channel)  # type: ignore[no-untyped-call]
        made = await stub.CreateApiKey(auth_pb2.CreateApiKeyRequest(name="reader"))
        await stub.CreateRoleBinding(
            auth_pb2.CreateRoleBindingRequest(
                binding=auth_pb2.RoleBinding(
                    subject="key:reader",
                    role=auth_pb2.ROLE_VIEWER,
                    tenant="acme",
                    environment="prod",
                )
            )
        )
        await stack.config.Put(config_pb2.PutRequest(key=ckey("acme", "k"), value="7"))
        async with ConfigClient.connect(
            stack.address,
            api_key=made.secret,
            selectors=[Selector(tenant="acme", environment="prod")],
        ) as reader:
            assert reader.get_int("acme/prod/api/k", 0) == 7
        with pytest.raises(PermissionDeniedError):
            async with ConfigClient.connect(
                stack.address,
                api_key=made.secret,
                selectors=[Selector(tenant="acme", environment="staging")],
            ):
                pass
    finally:
        await close_stack(stack)
