"""The server's wiring: one registration list, one ordered start-up/shutdown stack.

What reflection lists and what health reports come from the list of registered
services, so a service cannot be served and missing from either; a start-up that
fails half-way (a busy OFREP port) stops what it had started, so the gRPC port it
had bound is free again.
"""

from __future__ import annotations

import importlib
import pkgutil
import socket

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

import configsvc.v1
from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.ports import free_port
from configsvc.server.app import PortInUseError
from tests.helpers import Stack, close_stack, open_stack

FLAGD = (
    "flagd.evaluation.v1.Service",
    "flagd.evaluation.v2.Service",
    "flagd.sync.v1.FlagSyncService",
)


def public_services() -> set[str]:
    """Every service the configsvc.v1 protos define, and flagd's three."""
    names = set(FLAGD)
    for module in pkgutil.iter_modules(configsvc.v1.__path__):
        if module.name.endswith("_pb2"):
            descriptor = importlib.import_module(f"configsvc.v1.{module.name}").DESCRIPTOR
            names.update(service.full_name for service in descriptor.services_by_name.values())
    return names


async def test_every_service_is_reflected_and_health_checked(stack: Stack) -> None:
    expected = public_services()
    assert {
        "configsvc.v1.ConfigService",
        "configsvc.v1.FlagService",
        "configsvc.v1.SecretService",
    } <= expected
    stub = reflection_pb2_grpc.ServerReflectionStub(stack.channel)  # type: ignore[no-untyped-call]
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    reply = await call.read()
    call.cancel()
    listed = {s.name for s in reply.list_services_response.service}
    assert (
        expected | {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} == listed
    )
    health = health_pb2_grpc.HealthStub(stack.channel)
    for name in sorted(expected):
        response = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING, name


async def test_a_failed_start_stops_what_it_started(etcd: EtcdServer, stack: Stack) -> None:
    grpc_port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        with pytest.raises(PortInUseError, match="--ofrep-listen"):
            await open_stack(
                etcd.endpoint,
                stack.server.config.root_prefix,
                listen=f"127.0.0.1:{grpc_port}",
                ofrep_listen=f"127.0.0.1:{taken}",
            )
    # The gRPC port the failed start had bound and served on is released: a server
    # binds it again (without SO_REUSEPORT) and answers.
    again = await open_stack(
        etcd.endpoint, stack.server.config.root_prefix, listen=f"127.0.0.1:{grpc_port}"
    )
    try:
        assert again.server.port == grpc_port
        health = health_pb2_grpc.HealthStub(again.channel)
        response = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await close_stack(again)
