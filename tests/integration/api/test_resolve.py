"""Resolve against a real etcd: four layers merged, with provenance, from the mirror."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest

from configsvc.cli.main import main
from configsvc.v1 import config_pb2
from tests.helpers import ADMIN_KEY, Stack, ckey


async def put(stack: Stack, tenant: str, env: str, service: str, key: str, value: object) -> int:
    response = await stack.config.Put(
        config_pb2.PutRequest(
            key=ckey(tenant, key, env=env, service=service), value=json.dumps(value)
        )
    )
    return int(response.revision)


async def resolve(stack: Stack, tenant: str, env: str, service: str) -> config_pb2.ResolveResponse:
    response: config_pb2.ResolveResponse = await stack.config.Resolve(
        config_pb2.ResolveRequest(tenant=tenant, environment=env, service=service)
    )
    return response


async def test_layers_merge_with_provenance(stack: Stack, tenant: str) -> None:
    g = await put(stack, tenant, "all", "all", "db", {"host": "g", "port": 1, "tls": True})
    await put(stack, tenant, "all", "all", "flags", [1, 2])
    await put(stack, tenant, "all", "all", "shape", {"a": 1})
    e = await put(stack, tenant, "prod", "all", "db", {"port": 2})
    s = await put(stack, tenant, "all", "api", "db", {"pool": 5})
    await put(stack, tenant, "all", "api", "shape", 7)  # type clash: the scalar replaces
    se = await put(stack, tenant, "prod", "api", "db", {"host": {"$unset": True}})
    se2 = await put(stack, tenant, "prod", "api", "flags", [3])

    response = await resolve(stack, tenant, "prod", "api")
    assert json.loads(response.document) == {
        "db": {"pool": 5, "port": 2, "tls": True},
        "flags": [3],
        "shape": 7,
    }
    assert response.document == '{"db":{"pool":5,"port":2,"tls":true},"flags":[3],"shape":7}'
    where = {
        p.path: (p.layer, p.key.environment, p.key.service, p.key.key, p.revision)
        for p in response.provenance
    }
    assert where == {
        "/db/pool": ("service", "all", "api", "db", s),
        "/db/port": ("env", "prod", "all", "db", e),
        "/db/tls": ("global", "all", "all", "db", g),
        "/flags": ("service-env", "prod", "api", "flags", se2),
        "/shape": ("service", "all", "api", "shape", where["/shape"][4]),
    }
    assert response.last_change_revision == max(se, se2) and response.revision >= se2

    # Another service in the same environment sees only the global and env layers.
    web = await resolve(stack, tenant, "prod", "web")
    assert json.loads(web.document) == {
        "db": {"host": "g", "port": 2, "tls": True},
        "flags": [1, 2],
        "shape": {"a": 1},
    }
    # "all" resolves the wide layers only.
    wide = await resolve(stack, tenant, "all", "all")
    assert json.loads(wide.document)["db"] == {"host": "g", "port": 1, "tls": True}


async def test_resolution_follows_every_change(stack: Stack, tenant: str) -> None:
    await put(stack, tenant, "all", "all", "limit", 1)
    first = await resolve(stack, tenant, "prod", "api")
    await put(stack, tenant, "prod", "api", "limit", 2)
    second = await resolve(stack, tenant, "prod", "api")
    await stack.config.Delete(
        config_pb2.DeleteRequest(key=ckey(tenant, "limit", env="prod", service="api"))
    )
    third = await resolve(stack, tenant, "prod", "api")
    assert [json.loads(r.document)["limit"] for r in (first, second, third)] == [1, 2, 1]


async def test_values_are_checked_on_write_for_resolution(stack: Stack, tenant: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await put(stack, tenant, "all", "all", "bad", {"x": {"$unset": False}})
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "/bad/x" in (exc.value.details() or "") and "tombstone" in (exc.value.details() or "")
    # Other "$" members are ordinary data (a JSON Schema, JSON Logic...).
    await put(stack, tenant, "all", "all", "schema", {"$schema": "x", "$ref": "#/a"})
    response = await resolve(stack, tenant, "prod", "api")
    assert json.loads(response.document)["schema"] == {"$schema": "x", "$ref": "#/a"}


async def test_resolve_bad_input(stack: Stack, tenant: str) -> None:
    for request, code in [
        (config_pb2.ResolveRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        (
            config_pb2.ResolveRequest(tenant=tenant, environment="prod", service="a/b"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            config_pb2.ResolveRequest(tenant="no-such-tenant", environment="prod", service="api"),
            grpc.StatusCode.NOT_FOUND,
        ),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await stack.config.Resolve(request)
        assert exc.value.code() == code


async def test_cli_resolve(stack: Stack, tenant: str, capsys: pytest.CaptureFixture[str]) -> None:
    await put(stack, tenant, "all", "all", "db", {"port": 1})
    await put(stack, tenant, "prod", "api", "db", {"port": 2})
    code = await asyncio.to_thread(
        main,
        [
            "resolve",
            f"{tenant}/prod/api",
            "--provenance",
            "--server",
            stack.address,
            "--api-key",
            ADMIN_KEY,
        ],
    )
    out = capsys.readouterr().out
    assert code == 0
    assert '"port": 2' in out and "/db/port" in out and "service-env" in out
    code = await asyncio.to_thread(main, ["resolve", f"{tenant}/prod", "--server", stack.address])
    assert code == 2
