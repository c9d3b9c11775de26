"""Vault stopped and restarted: config keeps flowing, secrets fail clearly or come from
the cache inside its TTL, and everything recovers by itself."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

import grpc
import hvac
import pytest

from configsvc.devstack.etcd import EtcdServer
from configsvc.devstack.openbao import OpenBaoDevServer
from configsvc.v1 import config_pb2, tenant_pb2, watch_pb2, watch_pb2_grpc
from tests.helpers import (
    Stack,
    backend_of,
    ckey,
    close_stack,
    open_stack,
    secret_settings,
)
from tests.integration.secrets.support import READER, install_callers, ref, text


@pytest.fixture
async def outage_stack(etcd: EtcdServer, own_bao: OpenBaoDevServer) -> AsyncIterator[Stack]:
    stack = await open_stack(
        etcd.endpoint,
        f"/configsvc-outage-{os.getpid()}",
        secrets=secret_settings(own_bao, cache_ttl=600.0),
    )
    await install_callers(stack)
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    yield stack
    await close_stack(stack)


def write_secret(bao: OpenBaoDevServer, value: str) -> None:
    client = hvac.Client(url=bao.address, token=bao.token)
    client.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"password": value})
    client.adapter.close()


async def resolved(stack: Stack, key: str) -> object:
    got = await stack.config.Get(
        config_pb2.GetRequest(key=ckey("acme", key), resolve_secrets=True),
        metadata=READER,
        timeout=10,
    )
    return json.loads(got.entry.value)


async def test_vault_down_then_back(outage_stack: Stack, own_bao: OpenBaoDevServer) -> None:
    stack = outage_stack
    write_secret(own_bao, "before")
    await stack.config.Put(config_pb2.PutRequest(key=ckey("acme", "db"), value=text(ref("app/db"))))
    await stack.config.Put(
        config_pb2.PutRequest(key=ckey("acme", "db1"), value=text(ref("app/db", version=1)))
    )
    await stack.config.Put(config_pb2.PutRequest(key=ckey("acme", "plain"), value="7"))
    assert await resolved(stack, "db") == "before"  # now cached (TTL 600 s)

    own_bao.stop()

    # Non-secret config and unresolved reads are untouched.
    plain = await stack.config.Get(config_pb2.GetRequest(key=ckey("acme", "plain")), timeout=5)
    assert plain.entry.value == "7"
    assert (
        await stack.config.Get(config_pb2.GetRequest(key=ckey("acme", "db")), timeout=5)
    ).entry.value == text(ref("app/db"))
    # Inside its TTL the cached value is served.
    assert await resolved(stack, "db") == "before"
    # A secret that is not cached: UNAVAILABLE naming Vault.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await resolved(stack, "db1")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "Vault unavailable" in (err.value.details() or "")
    assert backend_of(err.value) == "Vault"
    # Once the TTL is over, the cached one is not served either.
    stack.server.secrets.cache.ttl = 0.0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await resolved(stack, "db")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    # A resolving watch cannot send its snapshot: it ends with the same status.
    call = watch_pb2_grpc.WatchServiceStub(stack.channel).Watch(
        watch_pb2.WatchRequest(
            selectors=[watch_pb2.WatchSelector(tenant="acme")],
            send_snapshot=True,
            resolve_secrets=True,
        ),
        metadata=READER,
        timeout=20,
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and backend_of(err.value) == "Vault"
    # Writes that hold references cannot be checked: UNAVAILABLE, nothing stored.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.config.Put(
            config_pb2.PutRequest(key=ckey("acme", "new"), value=text(ref("app/db"))), timeout=10
        )
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE and backend_of(err.value) == "Vault"
    # Plain writes go on.
    await stack.config.Put(config_pb2.PutRequest(key=ckey("acme", "plain"), value="8"))

    # Vault comes back (a dev server starts empty: the secret is written again).
    own_bao.start(timeout=30)
    write_secret(own_bao, "after")
    stack.server.secrets.cache.ttl = 600.0
    assert await resolved(stack, "db") == "after"
    assert await resolved(stack, "db1") == "after"
    await stack.config.Put(
        config_pb2.PutRequest(key=ckey("acme", "new"), value=text(ref("app/db")))
    )
