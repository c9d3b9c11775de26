"""Resolved-view Watch: a patch per change of any contributing layer, nothing otherwise."""

from __future__ import annotations

import asyncio
import hashlib
import json

import grpc
import pytest

from configsvc.resolve import canonical_json
from configsvc.v1 import template_pb2, tenant_pb2, watch_pb2, watch_pb2_grpc
from tests.helpers import PrivateStack
from tests.integration.hier.support import Hier, bad_request
from tests.unit.resolve.support import apply_patch


def view_request(
    tenant: str, env: str = "prod", service: str = "api", **fields: object
) -> watch_pb2.WatchRequest:
    return watch_pb2.WatchRequest(
        selectors=[
            watch_pb2.WatchSelector(
                tenant=tenant, environment=env, service=service, resolved=True, **fields
            )
        ]
    )


async def test_fires_on_a_global_change_and_stays_quiet_for_unrelated_keys(
    hier: Hier, tenant: str
) -> None:
    await hier.put(tenant, "all", "all", "log", "info")
    await hier.put(tenant, "prod", "api", "db", {"pool": 5})
    stub = watch_pb2_grpc.WatchServiceStub(hier.stack.channel)
    stream = stub.Watch(view_request(tenant), timeout=30)
    try:
        first = (await stream.read()).resolved
        document = json.loads(first.document)
        assert document == {"db": {"pool": 5}, "log": "info"} and not first.patch

        async def next_view() -> watch_pb2.ResolvedView:
            message: watch_pb2.WatchResponse = await asyncio.wait_for(stream.read(), 20)
            assert message.WhichOneof("kind") == "resolved"
            return message.resolved

        def apply(view: watch_pb2.ResolvedView) -> dict[str, object]:
            patched = apply_patch(document, json.loads(view.patch))
            text = canonical_json(patched)
            assert hashlib.sha256(text.encode()).hexdigest() == view.document_digest
            return json.loads(text)

        rev = await hier.put(tenant, "all", "all", "log", "debug")  # global: fires
        change = await next_view()
        assert change.revision >= rev and change.last_change_revision == rev
        assert json.loads(change.patch) == [{"op": "replace", "path": "/log", "value": "debug"}]
        document = apply(change)

        # Unrelated: another service, another environment, an overridden value, same value.
        await hier.put(tenant, "prod", "web", "log", "x")
        await hier.put(tenant, "staging", "all", "log", "x")
        await hier.put(tenant, "all", "api", "db", {"pool": 1})  # hidden by prod/api
        await hier.put(tenant, "all", "all", "log", "debug")
        # The next message is about the next relevant change, so nothing was sent meanwhile.
        rev = await hier.put(tenant, "prod", "all", "db", {"tls": True})
        change = await next_view()
        assert change.last_change_revision == rev
        assert json.loads(change.patch) == [{"op": "add", "path": "/db/tls", "value": True}]
        document = apply(change)

        # Templates contribute too.
        await hier.templates.PutTemplate(
            template_pb2.PutTemplateRequest(tenant=tenant, name="base", values={"retries": "3"})
        )
        await hier.templates.SetExtends(
            template_pb2.SetExtendsRequest(tenant=tenant, service="api", extends=["base@1"])
        )
        change = await next_view()
        assert json.loads(change.patch) == [{"op": "add", "path": "/retries", "value": 3}]
        assert apply(change)["retries"] == 3
    finally:
        stream.cancel()


async def test_resolved_selectors_are_validated(hier: Hier, tenant: str) -> None:
    stub = watch_pb2_grpc.WatchServiceStub(hier.stack.channel)
    bad = [
        (view_request(tenant, keys=["a"]), "selectors[0].keys"),
        (view_request(tenant, env=""), "selectors[0].environment"),
        (
            watch_pb2.WatchRequest(start_revision=5, selectors=view_request(tenant).selectors),
            "start_revision",
        ),
        (
            watch_pb2.WatchRequest(
                selectors=[*view_request(tenant).selectors, watch_pb2.WatchSelector(tenant=tenant)]
            ),
            "selectors",
        ),
    ]
    for request, field in bad:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await stub.Watch(request, timeout=10).read()
        assert bad_request(exc.value)[0][0] == field
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.Watch(view_request("no-such-tenant"), timeout=10).read()
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


async def test_view_streams_end_with_unavailable_at_shutdown(
    private_stack: PrivateStack,
) -> None:
    stack = private_stack.stack
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    stream = watch_pb2_grpc.WatchServiceStub(stack.channel).Watch(view_request("acme"), timeout=30)
    first = await stream.read()
    assert json.loads(first.resolved.document) == {}
    assert len(stack.server.resolved_views) == 1
    await stack.server.stop(grace=1.0)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stream.read()
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_view_streams_end_when_etcd_stays_lost(private_stack: PrivateStack) -> None:
    stack, etcd = private_stack.stack, private_stack.etcd
    await stack.tenants.CreateTenant(tenant_pb2.CreateTenantRequest(name="acme"))
    stream = watch_pb2_grpc.WatchServiceStub(stack.channel).Watch(view_request("acme"), timeout=60)
    await stream.read()
    etcd.stop()
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await asyncio.wait_for(stream.read(), 50)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "lost etcd" in (exc.value.details() or "")
