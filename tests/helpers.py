"""Helpers shared by the tests: start etcd and an in-process server, build keys."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from configsvc.auth.settings import AuthSettings
from configsvc.devstack import DevStackError, ensure_port_free
from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.openbao import OpenBaoDevServer
from configsvc.devstack.ports import free_port
from configsvc.devstack.pulsar import PulsarLite
from configsvc.secrets.settings import SecretSettings, VaultAuth, VaultSettings
from configsvc.server.app import ConfigServer
from configsvc.server.config import ServerConfig
from configsvc.v1 import config_pb2, config_pb2_grpc, tenant_pb2_grpc


def child_processes(parent: int) -> dict[int, str]:
    """Direct children of ``parent`` (zombies included) as pid -> command name, from /proc."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we were looking
        close = stat.rindex(")")
        if int(stat[close + 2 :].split()[1]) == parent:
            found[int(entry.name)] = stat[stat.index("(") + 1 : close]
    return found


def start_etcd(data_dir: Path) -> EtcdServer:
    etcd = EtcdServer(data_dir, client_port=free_port(), peer_port=free_port())
    etcd.start(timeout=30)
    return etcd


def start_pulsar(data_dir: Path) -> PulsarLite:
    """pulsar-lite on a free port; a missing binary fails the test (never a skip)."""
    broker = PulsarLite(data_dir, free_port())
    broker.start(timeout=60)
    return broker


@dataclass
class Stack:
    """A running server with stubs connected to it."""

    server: ConfigServer
    channel: grpc.aio.Channel
    config: config_pb2_grpc.ConfigServiceStub
    tenants: tenant_pb2_grpc.TenantServiceStub

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"


#: The bootstrap admin key of every test server; ``open_stack``'s channel sends it.
ADMIN_KEY = "cs_00000000000000ad_test-bootstrap-admin-secret"


class _Metadata:
    """Adds fixed metadata (the credential) to every call of a channel."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    def _details(self, details: Any) -> Any:
        return details._replace(metadata=(*(details.metadata or ()), *self._metadata))


class _UnaryMetadata(_Metadata, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _StreamMetadata(_Metadata, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


#: Environment for a ``configsvc serve`` subprocess: auth on, bootstrapping ``ADMIN_KEY``.
SERVE_ENV = {"CONFIGSVC_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY}


def key_credentials(key: str = ADMIN_KEY) -> grpc.ChannelCredentials:
    """Channel credentials that send ``key`` on every call over plaintext loopback: what a
    flagd provider gets as ``channel_credentials`` (with TLS: ssl_channel_credentials)."""
    return grpc.composite_channel_credentials(
        grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP),
        grpc.access_token_call_credentials(key),
    )


def bearer(key: str = ADMIN_KEY) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def auth_channel(address: str, key: str = ADMIN_KEY, **kwargs: Any) -> grpc.aio.Channel:
    """An insecure channel whose every call carries ``key``."""
    # One interceptor object per call kind: grpc.aio files each under its first kind only.
    metadata = bearer(key)
    return grpc.aio.insecure_channel(
        address, interceptors=[_UnaryMetadata(metadata), _StreamMetadata(metadata)], **kwargs
    )


async def open_stack(endpoint: str, root: str, **overrides: object) -> Stack:
    """A started server (on a free port unless ``listen`` is given), synced with etcd.

    Authentication is on, as in production: the server bootstraps ``ADMIN_KEY``
    and the stack's channel sends it.
    """
    settings: dict[str, object] = {
        "listen": "127.0.0.1:0",
        "grace_period": 1.0,
        "auth": AuthSettings(bootstrap_admin_key=ADMIN_KEY),
        **overrides,
    }
    config = ServerConfig(etcd_endpoints=(endpoint,), root_prefix=root, **settings)  # type: ignore[arg-type]
    server = ConfigServer(config)
    await server.start()
    assert await server.mirror.wait_synced(15), "mirror did not sync with etcd"
    await asyncio.wait_for(server.auth.bootstrapped.wait(), 15)
    channel = auth_channel(f"127.0.0.1:{server.port}")
    return Stack(
        server,
        channel,
        config_pb2_grpc.ConfigServiceStub(channel),
        tenant_pb2_grpc.TenantServiceStub(channel),
    )


async def close_stack(stack: Stack) -> None:
    await stack.channel.close()
    await stack.server.stop(grace=1.0)


def ckey(tenant: str, key: str, env: str = "prod", service: str = "api") -> config_pb2.ConfigKey:
    return config_pb2.ConfigKey(tenant=tenant, environment=env, service=service, key=key)


@dataclass
class PrivateStack:
    """An etcd and a server that only this test uses (it may stop etcd)."""

    etcd: EtcdServer
    stack: Stack


def start_openbao(data_dir: Path) -> OpenBaoDevServer:
    """An OpenBao dev server (KV v2 at secret/, transit at transit/) on free ports.

    OpenBao also binds port + 1 (its cluster listener), so both must be free.
    """
    bao = OpenBaoDevServer(data_dir, port=free_port_pair())
    bao.start(timeout=30)
    return bao


def free_port_pair() -> int:
    """A free port whose successor is free too (OpenBao's API and cluster ports)."""
    for _ in range(50):
        port = free_port()
        try:
            ensure_port_free("127.0.0.1", port + 1, "OpenBao cluster", "--bao-port")
        except DevStackError:
            continue
        return port
    raise RuntimeError("no free port pair for OpenBao")


def secret_settings(bao: OpenBaoDevServer, **overrides: object) -> SecretSettings:
    """Secrets against ``bao`` with its root token; readers "reader" unless overridden."""
    values: dict[str, object] = {
        "vault": VaultSettings(address=bao.address, auth=VaultAuth(token=bao.token), timeout=2.0),
        "readers": ("reader",),
        "cache_ttl": 60.0,
        "poll_interval": 0.2,
        **overrides,
    }
    return SecretSettings(**values)  # type: ignore[arg-type]


# ------------------------------------------------- google.rpc error details (the one decoder)

#: The trailer that carries a call's google.rpc.Status (the rich error model).
DETAILS_TRAILER = "grpc-status-details-bin"

#: Where a status comes from: a failed call, or trailing metadata (a fake servicer
#: context's ``trailers`` in unit tests).
StatusSource: TypeAlias = grpc.aio.AioRpcError | Iterable[tuple[str, str | bytes]] | None

_Detail = TypeVar("_Detail", bound=Message)


def rich_status(source: StatusSource) -> status_pb2.Status | None:
    """The google.rpc.Status in ``source``'s details trailer; None when it has none.

    For a failed call the status must agree with the call's own code and message
    (what ``grpc_status.rpc_status.from_call`` checks), so a test never reads details
    that belong to another answer.
    """
    error = source if isinstance(source, grpc.aio.AioRpcError) else None
    trailers = error.trailing_metadata() if error is not None else source
    for key, value in trailers or ():
        if key == DETAILS_TRAILER and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            if error is not None:
                assert status.code == error.code().value[0], (status.code, error.code())
                assert status.message == (error.details() or ""), (status.message, error.details())
            return status
    return None


def error_details(source: StatusSource) -> list[any_pb2.Any]:
    """The packed details of ``source``'s status in order; empty without a status."""
    status = rich_status(source)
    return list(status.details) if status is not None else []


def details_of(source: StatusSource, kind: type[_Detail]) -> list[_Detail]:
    """Every detail of type ``kind`` (``error_details_pb2.BadRequest`` ...), in order."""
    found = []
    for packed in error_details(source):
        detail = kind()
        if packed.Unpack(detail):
            found.append(detail)
    return found


def detail_of(source: StatusSource, kind: type[_Detail]) -> _Detail:
    """The first detail of type ``kind``; fails the test when there is none."""
    assert rich_status(source) is not None, "the error carries no google.rpc.Status"
    found = details_of(source, kind)
    if not found:
        raise AssertionError(f"no {kind.DESCRIPTOR.name} detail")
    return found[0]


def backend_of(err: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo metadata["backend"] of an UNAVAILABLE error."""
    return str(detail_of(err, error_details_pb2.ErrorInfo).metadata["backend"])


def grpcurl() -> str:
    """The grpcurl binary (installed by ``make tools``); missing fails the test, never skips."""
    found = shutil.which("grpcurl") or str(
        Path(__file__).resolve().parents[1] / ".tools" / "bin" / "grpcurl"
    )
    assert Path(found).exists(), "grpcurl is missing: run `make tools` (go install)"
    return found


def serve_argv(endpoint: str, root: str, port: int, *options: str) -> list[str]:
    """The command line of ``configsvc serve`` as a child process of a test: one worker on
    ``127.0.0.1:port``, the given etcd and root prefix, WARNING logs, then ``options``
    (a later option overrides an earlier one, as argparse reads them)."""
    return [
        sys.executable, "-m", "configsvc.cli.main", "serve",
        "--workers", "1",
        "--listen", f"127.0.0.1:{port}",
        "--etcd-endpoints", endpoint,
        "--root-prefix", root,
        "--log-level", "WARNING",
        *options,
    ]  # fmt: skip


def wait_process_serving(address: str, process: subprocess.Popen[bytes]) -> None:
    """Block until the server process at ``address`` reports SERVING (bounded: 30 s); fail
    at once if the process exits during start-up."""
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(300):
            try:
                status = health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                if status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            assert process.poll() is None, "configsvc serve exited during start-up"
            time.sleep(0.1)
    raise AssertionError(f"configsvc serve at {address} did not become SERVING")
