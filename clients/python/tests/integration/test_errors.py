"""Typed exceptions for real server errors; no raw AioRpcError reaches the caller."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from clients.python.tests.integration.support import Server, eventually, start_server
from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.ports import free_port
from configsvc_client import (
    ConfigClient,
    ConfigError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    Selector,
    UnavailableError,
    lkg,
)


async def test_server_errors_are_typed(server: Server, tenant: str) -> None:
    async with ConfigClient.connect(server.address, selectors=[Selector(tenant=tenant)]) as client:
        with pytest.raises(NotFoundError) as missing:
            await client.fetch(f"{tenant}/prod/api/absent")
        assert missing.value.code == grpc.StatusCode.NOT_FOUND
        assert missing.value.resource_type and tenant in missing.value.resource_name

        written = await client.put(f"{tenant}/prod/api/k", {"v": 1})
        with pytest.raises(ConflictError) as conflict:
            await client.put(
                f"{tenant}/prod/api/k", {"v": 2}, expected_revision=written.revision - 1
            )
        assert conflict.value.current_revision == written.revision
        with pytest.raises(ConflictError) as exists:
            await client.put(f"{tenant}/prod/api/k", 3, expected_revision=0)
        assert exists.value.current_revision == written.revision
        again = await client.put(f"{tenant}/prod/api/k", 3, expected_revision=written.revision)
        assert again.revision > written.revision and again.version == 2

        with pytest.raises(InvalidArgumentError) as bad:
            await client.put(f"{tenant}/prod/api/bad..key", raw_json="{not json")
        fields = {v.field for v in bad.value.field_violations}
        assert fields and all(f.startswith(("key", "value")) for f in fields), fields

        with pytest.raises(InvalidArgumentError):  # caught before any RPC
            await client.put(f"{tenant}/prod/api/k", float("nan"))
        with pytest.raises(NotFoundError):
            await client.delete(f"{tenant}/prod/api/absent")
        with pytest.raises(ConflictError):
            await client.delete(f"{tenant}/prod/api/k", expected_revision=1)


async def test_watch_errors_at_connect(server: Server, tenant: str) -> None:
    with pytest.raises(NotFoundError) as missing:
        await ConfigClient.connect(server.address, selectors=[Selector(tenant="no-such-tenant")])
    assert missing.value.resource_name == "no-such-tenant"
    with pytest.raises(InvalidArgumentError) as bad:
        await ConfigClient.connect(server.address, selectors=[Selector(tenant="Bad_Tenant")])
    assert bad.value.field_violations


async def test_unavailable_when_nothing_listens(tmp_path: Path) -> None:
    # A cache file lets the client start; its unary calls then fail with UNAVAILABLE.
    cache_file = tmp_path / "cache.json"
    lkg.save(cache_file, 5, [Selector(tenant="acme")], [])
    async with ConfigClient.connect(
        f"127.0.0.1:{free_port()}",
        selectors=[Selector(tenant="acme")],
        cache_file=cache_file,
        connect_timeout=0.2,
    ) as client:
        with pytest.raises(UnavailableError) as exc:
            await client.fetch("acme/prod/api/k", timeout=2)
        assert exc.value.code == grpc.StatusCode.UNAVAILABLE and exc.value.backend is None
        with pytest.raises(UnavailableError):
            await client.put("acme/prod/api/k", 1, timeout=2)


async def test_unavailable_names_etcd_when_the_server_lost_it(private_etcd: EtcdServer) -> None:
    server = await start_server(private_etcd.endpoint, "/configsvc")
    try:
        await server.create_tenant("acme")
        await server.put("acme", "k", "1")
        async with ConfigClient.connect(
            server.address,
            selectors=[Selector(tenant="acme")],
        ) as client:
            private_etcd.stop()
            with pytest.raises(UnavailableError) as exc:
                await client.put("acme/prod/api/k", 2, timeout=8)
            assert exc.value.backend == "etcd"
            # The cache keeps serving. (The server keeps existing Watch streams open, with
            # heartbeats, while its mirror has lost etcd, so the client cannot tell.)
            assert client.get("acme/prod/api/k") == 1
            private_etcd.start(timeout=30)

            async def put_succeeds() -> bool:
                try:
                    await client.put("acme/prod/api/k", 3, timeout=2)
                except UnavailableError:
                    return False
                return True

            await eventually(put_succeeds, timeout=30, what="server recovered from etcd loss")
            await eventually(lambda: client.get("acme/prod/api/k") == 3)
    finally:
        await server.stop()


async def test_no_grpc_error_escapes_the_api(server: Server, tenant: str) -> None:
    async with ConfigClient.connect(server.address, selectors=[Selector(tenant=tenant)]) as client:
        calls = [
            client.fetch(f"{tenant}/prod/api/nope"),
            client.put(f"{tenant}/prod/API/k", 1),
            client.delete(f"{tenant}/prod/api/nope"),
            client.fetch(f"{tenant}/prod/api/slow", timeout=0.000001),
        ]
        for outcome in await asyncio.gather(*calls, return_exceptions=True):
            assert isinstance(outcome, ConfigError), outcome
            assert not isinstance(outcome, grpc.RpcError), outcome
