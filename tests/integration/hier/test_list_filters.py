"""List filters: key glob, labels stored with values, last author, time changed."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from configsvc.v1 import config_pb2
from tests.helpers import ckey
from tests.integration.auth.support import acting_as
from tests.integration.hier.support import Hier, bad_request


async def put(
    hier: Hier, tenant: str, key: str, labels: dict[str, str], actor: str, env: str = "prod"
) -> config_pb2.PutResponse:
    """Put as the authenticated identity ``key:<actor>``."""
    callers = await acting_as(hier.stack, tenant, actor)
    response: config_pb2.PutResponse = await hier.stack.config.Put(
        config_pb2.PutRequest(key=ckey(tenant, key, env=env), value="1", labels=labels),
        metadata=callers[actor],
    )
    return response


async def names(hier: Hier, **fields: object) -> list[str]:
    response = await hier.stack.config.List(config_pb2.ListRequest(**fields))
    return [e.key.key for e in response.entries]


async def test_filters_combine(hier: Hier, tenant: str) -> None:
    first = await put(hier, tenant, "db.pool", {"team": "data", "tier": "1"}, "alice")
    await put(hier, tenant, "db.timeout", {"team": "data"}, "bob")
    await put(hier, tenant, "http.timeout", {"team": "web"}, "alice")
    last = await put(hier, tenant, "cache.size", {}, "carol", env="staging")
    assert dict(first.entry.labels) == {"team": "data", "tier": "1"}

    assert await names(hier, tenant=tenant, key_glob="*.timeout") == ["db.timeout", "http.timeout"]
    assert await names(hier, tenant=tenant, key_glob="db.?ool") == ["db.pool"]
    assert await names(hier, tenant=tenant, labels={"team": "data"}) == ["db.pool", "db.timeout"]
    assert await names(hier, tenant=tenant, labels={"team": "data", "tier": "1"}) == ["db.pool"]
    assert await names(hier, tenant=tenant, updated_by="key:alice") == ["db.pool", "http.timeout"]
    assert await names(hier, tenant=tenant, updated_by="key:alice", key_glob="http.*") == [
        "http.timeout"
    ]
    since = last.entry.update_time
    assert await names(hier, tenant=tenant, updated_after=since) == ["cache.size"]
    assert await names(hier, tenant=tenant, updated_before=since) == [
        "db.pool",
        "db.timeout",
        "http.timeout",
    ]

    # Paging with filters: the token is bound to them.
    page = await hier.stack.config.List(
        config_pb2.ListRequest(tenant=tenant, labels={"team": "data"}, page_size=1)
    )
    assert [e.key.key for e in page.entries] == ["db.pool"] and page.next_page_token
    rest = await hier.stack.config.List(
        config_pb2.ListRequest(
            tenant=tenant, labels={"team": "data"}, page_size=1, page_token=page.next_page_token
        )
    )
    assert [e.key.key for e in rest.entries] == ["db.timeout"]
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await hier.stack.config.List(
            config_pb2.ListRequest(tenant=tenant, page_size=1, page_token=page.next_page_token)
        )
    assert bad_request(exc.value)[0][0] == "page_token"

    # Rollback restores the labels of the version it restores; a Put replaces them.
    await put(hier, tenant, "db.pool", {}, "dave")
    rolled = await hier.stack.config.Rollback(
        config_pb2.RollbackRequest(key=ckey(tenant, "db.pool"), to_version=1)
    )
    assert dict(rolled.entry.labels) == {"team": "data", "tier": "1"}


async def test_bad_filters_and_labels(hier: Hier, tenant: str) -> None:
    for request, field in (
        (config_pb2.ListRequest(tenant=tenant, key_glob="a/b"), "key_glob"),
        (config_pb2.ListRequest(tenant=tenant, labels={"Bad": "x"}), "labels['Bad']"),
        (
            config_pb2.ListRequest(
                tenant=tenant,
                updated_after=Timestamp(seconds=5),
                updated_before=Timestamp(seconds=5),
            ),
            "updated_before",
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await hier.stack.config.List(request)
        assert bad_request(exc.value)[0][0] == field
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await put(hier, tenant, "k", {"ok": "x" * 300}, "a")
    assert bad_request(exc.value)[0][0] == "labels[ok]"
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await put(hier, tenant, "k", {f"l{i}": "" for i in range(65)}, "a")
    assert bad_request(exc.value)[0][0] == "labels"
