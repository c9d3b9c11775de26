"""Fixtures for secrets against a real OpenBao: a server with Vault on, and Vault itself."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator

import hvac
import pytest

from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.openbao import OpenBaoDevServer
from configsvc.v1 import tenant_pb2
from tests.helpers import Stack, close_stack, open_stack, secret_settings
from tests.integration.secrets.support import install_callers

_ids = itertools.count(1)


@pytest.fixture(scope="session")
def bao(openbao: OpenBaoDevServer) -> Iterator[hvac.Client]:
    """A root client of the session's OpenBao, for writing secrets in tests."""
    client = hvac.Client(url=openbao.address, token=openbao.token)
    yield client
    client.adapter.close()


@pytest.fixture(scope="session")
async def secret_stack(etcd: EtcdServer, openbao: OpenBaoDevServer) -> AsyncIterator[Stack]:
    """A server with Vault configured, rotation polled every 0.2 s, and the callers
    key:reader (READER) and key:mallory (STRANGER)."""
    opened = await open_stack(
        etcd.endpoint, f"/configsvc-secrets-{os.getpid()}", secrets=secret_settings(openbao)
    )
    await install_callers(opened)
    yield opened
    await close_stack(opened)


@pytest.fixture
async def stenant(secret_stack: Stack) -> str:
    """A fresh tenant on the secret stack."""
    name = f"s{next(_ids)}-{os.getpid()}"
    await secret_stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name=name))
    return name


@pytest.fixture
def secret_path(stenant: str) -> str:
    """A KV path of this test's own."""
    return f"tests/{stenant}/db"
