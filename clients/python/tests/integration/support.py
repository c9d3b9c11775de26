"""Helpers for the client's integration tests: servers on fixed ports, waiting, recording."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc

from configsvc.server.app import ConfigServer
from configsvc.server.config import ServerConfig
from configsvc.v1 import config_pb2, config_pb2_grpc, tenant_pb2, tenant_pb2_grpc
from configsvc.watch.hub import WatchLimits
from configsvc_client import Change


@dataclass
class Server:
    """A real configsvc server on a fixed port, with server-side stubs for setup."""

    server: ConfigServer
    channel: grpc.aio.Channel
    config: config_pb2_grpc.ConfigServiceStub
    tenants: tenant_pb2_grpc.TenantServiceStub

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    async def put(self, tenant: str, key: str, value: str, env: str = "prod",
                  service: str = "api") -> int:
        response = await self.config.Put(config_pb2.PutRequest(
            key=config_pb2.ConfigKey(tenant=tenant, environment=env, service=service, key=key),
            value=value))
        return int(response.revision)

    async def delete(self, tenant: str, key: str, env: str = "prod", service: str = "api") -> int:
        response = await self.config.Delete(config_pb2.DeleteRequest(
            key=config_pb2.ConfigKey(tenant=tenant, environment=env, service=service, key=key)))
        return int(response.revision)

    async def values(self, tenant: str) -> dict[str, str]:
        """Every entry of the tenant as ``env/service/key -> value`` (strong reads)."""
        out: dict[str, str] = {}
        token = ""
        while True:
            page = await self.config.List(config_pb2.ListRequest(
                tenant=tenant, page_size=1000, page_token=token,
                consistency=config_pb2.READ_CONSISTENCY_STRONG))
            out.update({f"{e.key.environment}/{e.key.service}/{e.key.key}": e.value
                        for e in page.entries})
            token = page.next_page_token
            if not token:
                return out

    async def create_tenant(self, name: str) -> None:
        await self.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name=name))

    async def stop(self) -> None:
        await self.channel.close()
        await self.server.stop(grace=1.0)


async def start_server(endpoint: str, root: str, port: int = 0,
                       watch: WatchLimits | None = None) -> Server:
    """A server on ``127.0.0.1:port`` (0: a free one); retries briefly while the port frees up."""
    config = ServerConfig(listen=f"127.0.0.1:{port}", etcd_endpoints=(endpoint,),
                          root_prefix=root, grace_period=1.0, etcd_timeout=2.0,
                          mirror_backoff=(0.05, 0.5), log_format="text",
                          watch=watch or WatchLimits(progress_interval=1.0))
    deadline = time.monotonic() + 10
    while True:
        server = ConfigServer(config)
        try:
            await server.start()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    assert await server.mirror.wait_synced(15), "mirror did not sync with etcd"
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    return Server(server, channel, config_pb2_grpc.ConfigServiceStub(channel),
                  tenant_pb2_grpc.TenantServiceStub(channel))


async def eventually(predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 15.0,
                     what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.02)


@dataclass
class Recorder:
    """Collects changes from a subscription callback."""

    changes: list[Change] = field(default_factory=list)

    def __call__(self, change: Change) -> None:
        self.changes.append(change)

    def summary(self) -> list[tuple[str, str, object]]:
        return [(c.type.value, c.path.key, c.value) for c in self.changes]
