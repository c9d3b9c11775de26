"""Fixtures for the client's integration tests: a real etcd and real configsvc servers.

One etcd and one server serve the tests that only read and write; tests that
stop servers or compact etcd get an etcd of their own (``private_etcd``), so
their revisions and replay windows are not disturbed by other tests.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from clients.python.tests.integration.support import Server, start_server
from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.pulsar import PulsarLite
from tests.helpers import start_etcd, start_pulsar

_tenant_ids = itertools.count(1)


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    server = start_etcd(tmp_path_factory.mktemp("client-etcd"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def server(etcd: EtcdServer) -> AsyncIterator[Server]:
    opened = await start_server(etcd.endpoint, f"/configsvc-client-test-{os.getpid()}")
    yield opened
    await opened.stop()


@pytest.fixture
async def tenant(server: Server) -> str:
    name = f"c{next(_tenant_ids)}-{os.getpid()}"
    await server.create_tenant(name)
    return name


@pytest.fixture
def private_etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    etcd = start_etcd(tmp_path / "etcd")
    yield etcd
    etcd.stop()


@pytest.fixture(scope="session")
def pulsar_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulsarLite]:
    broker = start_pulsar(tmp_path_factory.mktemp("client-pulsar"))
    yield broker
    broker.stop()
