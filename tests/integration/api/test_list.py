"""List: paging over thousands of keys, scope filters and key order."""

from __future__ import annotations

import asyncio

from configsvc.v1 import config_pb2
from tests.helpers import Stack, ckey


async def list_all(stack: Stack, request: config_pb2.ListRequest) -> list[str]:
    seen: list[str] = []
    while True:
        page = await stack.config.List(request)
        seen.extend(f"{e.key.environment}/{e.key.service}/{e.key.key}" for e in page.entries)
        if not page.next_page_token:
            return seen
        request.page_token = page.next_page_token


async def test_2500_keys_listed_page_by_page_each_exactly_once(stack: Stack, tenant: str) -> None:
    expected = set()
    semaphore = asyncio.Semaphore(32)

    async def put(i: int) -> None:
        env = ("prod", "staging", "all")[i % 3]
        service = ("api", "web", "all", "worker")[i % 4]
        key = f"key.{i:05d}"
        expected.add(f"{env}/{service}/{key}")
        async with semaphore:
            await stack.config.Put(
                config_pb2.PutRequest(key=ckey(tenant, key, env=env, service=service), value=str(i))
            )

    await asyncio.gather(*(put(i) for i in range(2500)))
    seen = await list_all(stack, config_pb2.ListRequest(tenant=tenant, page_size=97))
    assert len(seen) == 2500
    assert set(seen) == expected
    assert len(set(seen)) == len(seen)

    prod_api = await list_all(
        stack,
        config_pb2.ListRequest(tenant=tenant, environment="prod", service="api", page_size=50),
    )
    assert prod_api == sorted(k for k in expected if k.startswith("prod/api/"))

    web_any_env = await list_all(
        stack,
        config_pb2.ListRequest(tenant=tenant, service="web", key_prefix="key.001", page_size=7),
    )
    assert set(web_any_env) == {
        k for k in expected if k.split("/")[1] == "web" and k.split("/")[2].startswith("key.001")
    }

    staging = await list_all(
        stack, config_pb2.ListRequest(tenant=tenant, environment="staging", page_size=1000)
    )
    assert set(staging) == {k for k in expected if k.startswith("staging/")}


async def test_list_default_page_and_empty_tenant(stack: Stack, tenant: str) -> None:
    empty = await stack.config.List(config_pb2.ListRequest(tenant=tenant))
    assert list(empty.entries) == [] and empty.next_page_token == ""
    for i in range(101):
        await stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, f"k{i:03d}"), value="1"))
    page = await stack.config.List(config_pb2.ListRequest(tenant=tenant))
    assert len(page.entries) == 100 and page.next_page_token
    rest = await stack.config.List(
        config_pb2.ListRequest(tenant=tenant, page_token=page.next_page_token)
    )
    assert [e.key.key for e in rest.entries] == ["k100"] and not rest.next_page_token


async def test_key_exactly_on_page_boundary_deleted_between_pages(
    stack: Stack, tenant: str
) -> None:
    for i in range(4):
        await stack.config.Put(config_pb2.PutRequest(key=ckey(tenant, f"k{i}"), value="1"))
    first = await stack.config.List(config_pb2.ListRequest(tenant=tenant, page_size=2))
    assert [e.key.key for e in first.entries] == ["k0", "k1"]
    await stack.config.Delete(config_pb2.DeleteRequest(key=ckey(tenant, "k1")))
    second = await stack.config.List(
        config_pb2.ListRequest(tenant=tenant, page_size=2, page_token=first.next_page_token)
    )
    assert [e.key.key for e in second.entries] == ["k2", "k3"]
