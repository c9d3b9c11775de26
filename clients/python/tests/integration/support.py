"""Helpers for the client's integration tests: servers on fixed ports, waiting, recording."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from configsvc.auth.settings import AUTH_OFF, AuthSettings
from configsvc.server.app import PortInUseError
from configsvc.v1 import config_pb2, tenant_pb2
from configsvc.watch.hub import WatchLimits
from configsvc_client import Change
from tests.helpers import Stack, close_stack, open_stack


@dataclass
class Server(Stack):
    """A real configsvc server (tests/helpers.Stack) with setup shortcuts for client tests."""

    async def put(
        self, tenant: str, key: str, value: str, env: str = "prod", service: str = "api"
    ) -> int:
        response = await self.config.Put(
            config_pb2.PutRequest(
                key=config_pb2.ConfigKey(tenant=tenant, environment=env, service=service, key=key),
                value=value,
            )
        )
        return int(response.revision)

    async def delete(self, tenant: str, key: str, env: str = "prod", service: str = "api") -> int:
        response = await self.config.Delete(
            config_pb2.DeleteRequest(
                key=config_pb2.ConfigKey(tenant=tenant, environment=env, service=service, key=key)
            )
        )
        return int(response.revision)

    async def values(self, tenant: str) -> dict[str, str]:
        """Every entry of the tenant as ``env/service/key -> value`` (strong reads)."""
        out: dict[str, str] = {}
        token = ""
        while True:
            page = await self.config.List(
                config_pb2.ListRequest(
                    tenant=tenant,
                    page_size=1000,
                    page_token=token,
                    consistency=config_pb2.READ_CONSISTENCY_STRONG,
                )
            )
            out.update(
                {f"{e.key.environment}/{e.key.service}/{e.key.key}": e.value for e in page.entries}
            )
            token = page.next_page_token
            if not token:
                return out

    async def create_tenant(self, name: str) -> None:
        await self.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name=name))

    async def stop(self) -> None:
        await close_stack(self)


async def start_server(
    endpoint: str, root: str, port: int = 0, watch: WatchLimits | None = None
) -> Server:
    """A server on ``127.0.0.1:port`` (0: a free one); retries briefly while the port frees up."""
    deadline = time.monotonic() + 10
    while True:
        try:
            # Authentication is off here: these tests are about the client's streams and
            # caches; test_auth.py covers API keys and TLS against a server with auth on.
            stack = await open_stack(
                endpoint,
                root,
                listen=f"127.0.0.1:{port}",
                etcd_timeout=2.0,
                mirror_backoff=(0.05, 0.5),
                log_format="text",
                watch=watch or WatchLimits(progress_interval=1.0),
                auth=AuthSettings(mode=AUTH_OFF),
            )
            break
        except PortInUseError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
    return Server(stack.server, stack.channel, stack.config, stack.tenants)


async def eventually(
    predicate: Callable[[], bool | Awaitable[bool]], timeout: float = 15.0, what: str = "condition"
) -> None:
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
