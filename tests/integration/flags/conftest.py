"""Fixtures of the flag tests: the official conformance data and a flag server process.

The gherkin suites run with pytest-bdd, whose steps are synchronous; the flag
server they call therefore runs as its own ``configsvc serve`` process (on the
session etcd and root prefix), fed through the session stack's flag store, so
every scenario also crosses the etcd watch between two processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.ports import free_port
from configsvc.flags._gen.flagd.sync.v1 import sync_pb2, sync_pb2_grpc
from configsvc.v1 import tenant_pb2
from tests.helpers import Stack
from tests.unit.flags.conformance import EVALUATOR_FLAGS, TESTBED

#: Tags of the official features, registered so --strict-markers accepts them.
_TAGS = sorted({
    tag.lstrip("@")
    for feature in TESTBED.rglob("*.feature")
    for line in feature.read_text().splitlines() if line.strip().startswith("@")
    for tag in line.split()
})


def pytest_configure(config: pytest.Config) -> None:
    for tag in _TAGS:
        config.addinivalue_line("markers", f"{tag}: flagd testbed tag")


@dataclass
class FlagServer:
    """A ``configsvc serve`` process sharing the session's etcd and root prefix."""

    address: str
    process: subprocess.Popen[bytes]


@pytest.fixture(scope="session")
def flag_server(etcd: EtcdServer, stack: Stack) -> Iterator[FlagServer]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "configsvc.cli.main", "serve", "--listen", f"127.0.0.1:{port}",
         "--etcd-endpoints", etcd.endpoint, "--root-prefix", stack.server.config.root_prefix,
         "--workers", "1", "--log-level", "WARNING", "--grace-period", "1"],
    )
    address = f"127.0.0.1:{port}"
    try:
        with grpc.insecure_channel(address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for _ in range(300):
                try:
                    status = health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    pass
                assert process.poll() is None, "configsvc serve exited during start-up"
                time.sleep(0.1)
            else:
                pytest.fail(f"configsvc serve at {address} did not become SERVING")
        yield FlagServer(address, process)
    finally:
        process.terminate()
        process.wait(timeout=30)


def wait_for_flag_set(address: str, selector: str, expected: dict[str, Any]) -> None:
    """Block until the server at ``address`` serves ``expected`` for ``selector`` (bounded)."""
    with grpc.insecure_channel(address) as channel:
        stub = sync_pb2_grpc.FlagSyncServiceStub(channel)
        for _ in range(300):
            try:
                got = stub.FetchAllFlags(sync_pb2.FetchAllFlagsRequest(),
                                         metadata=(("flagd-selector", selector),), timeout=2)
                if json.loads(got.flag_configuration) == expected:
                    return
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            time.sleep(0.05)
    pytest.fail(f"{address} never served the flag set {selector}")


@dataclass
class KitFlags:
    """The evaluator testkit flags loaded twice: current and legacy bucketing."""

    server: FlagServer
    current: str
    legacy: str


@pytest.fixture(scope="session")
async def testkit(stack: Stack, flag_server: FlagServer) -> KitFlags:
    tenant = "testkit"
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name=tenant))
    definition = json.loads(EVALUATOR_FLAGS.read_text())
    store = stack.server.flags.store
    for environment, bucketing in (("current", "current"), ("legacy", "legacy")):
        await store.put(tenant, environment, definition, bucketing=bucketing,  # type: ignore[arg-type]
                        actor="tests", reason="testkit", expected_revision=None, timeout=10)
        wait_for_flag_set(flag_server.address, f"{tenant}/{environment}", definition)
    return KitFlags(flag_server, f"{tenant}/current", f"{tenant}/legacy")
